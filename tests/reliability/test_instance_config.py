"""The zope.conf `make start` writes keeps blobs in FileStorage itself.

ZODB's ``<blobstorage>`` wrapper around ``<filestorage>`` cleans up an aborted
transaction's blob files after it has released the commit lock, so it can delete the
files of the next transaction, which then commits without them (see
docs/deployment.md, "Blobs"). ``<filestorage>`` with its own ``blob-dir`` cleans up
under the lock.
"""

from instance import open_main_storage
from instance import ROOT
from instance import write_instance
from pathlib import Path
from ZODB.blob import BlobStorage
from ZODB.FileStorage import FileStorage
from ZODB.interfaces import IBlobStorage

import configparser


def test_make_start_config_uses_filestorage_blob_dir(tmp_path):
    zope_conf = write_instance(tmp_path / "instance")
    storage = open_main_storage(zope_conf)
    try:
        assert type(storage) is FileStorage
        assert not isinstance(storage, BlobStorage)
        assert IBlobStorage.providedBy(storage)
        assert Path(storage.fshelper.base_dir) == (
            tmp_path / "instance" / "var" / "blobstorage"
        )
    finally:
        storage.close()


def test_buildout_replaces_the_recipes_blobstorage_wrapper(tmp_path):
    """plone.recipe.zope2instance wraps FileStorage in <blobstorage> whenever
    ``blob-storage`` is set; buildout.cfg turns that off and its ``storage-wrapper``
    (a template applied to the recipe's storage snippet) puts in our own."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "buildout.cfg")
    instance = parser["instance"]
    assert instance.get("blob-storage", "").strip() == ""
    recipe_snippet = "<filestorage>\n  path var/filestorage/Data.fs\n</filestorage>"
    storage = instance["storage-wrapper"] % recipe_snippet
    storage = storage.replace("${buildout:directory}", str(tmp_path))
    assert "<blobstorage>" not in storage
    zope_conf = tmp_path / "zope.conf"
    zope_conf.write_text(
        f"instancehome {tmp_path}\n<zodb_db main>\n{storage}\nmount-point /\n"
        "</zodb_db>\n"
    )
    (tmp_path / "var" / "filestorage").mkdir(parents=True)
    opened = open_main_storage(zope_conf)
    try:
        assert type(opened) is FileStorage
        assert IBlobStorage.providedBy(opened)
    finally:
        opened.close()
