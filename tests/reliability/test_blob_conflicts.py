"""No committed blob is lost when transactions conflict, on the storage that the
zope.conf of `make start` opens (real ZODB, real files, forced conflicts)."""

from __future__ import annotations

from BTrees.OOBTree import OOBTree
from instance import open_main_storage
from instance import write_instance
from persistent.mapping import PersistentMapping
from ZODB.blob import Blob
from ZODB.POSException import ConflictError
from ZODB.POSException import POSKeyError

import os
import pytest
import threading
import transaction
import ZODB


@pytest.fixture
def db(tmp_path):
    storage = open_main_storage(write_instance(tmp_path / "instance"))
    database = ZODB.DB(storage)
    with database.transaction() as connection:
        connection.root()["counter"] = PersistentMapping(n=0)
        connection.root()["items"] = OOBTree()
    yield database
    database.close()


def add_blob(db, key: str, data: bytes):
    """A new transaction (manager, connection) that adds a blob at ``key``."""
    manager = transaction.TransactionManager()
    connection = db.open(manager)
    blob = Blob()
    with blob.open("w") as f:
        f.write(data)
    connection.root()[key] = blob
    return manager, connection


def read_blob(db, *path: str) -> bytes:
    with db.transaction() as connection:
        blob = connection.root()
        for key in path:
            blob = blob[key]
        with blob.open("r") as f:
            return f.read()


def test_blob_committed_while_another_transaction_aborts(db, monkeypatch):
    """The exact interleaving that lost uploads: transaction A conflicts and aborts;
    B takes the commit lock as soon as A's storage releases it and stores a blob;
    then A's abort finishes. B's blob must survive.

    The hook is the storage's tpc_abort, whichever object the database calls it on
    (a wrapper calls its inner storage's, then cleans up after the lock is gone)."""
    storage = db.storage
    inner = getattr(storage, "_BlobStorage__storage", storage)
    released, b_stored = threading.Event(), threading.Event()
    original = inner.tpc_abort

    def tpc_abort(txn):
        original(txn)
        if threading.current_thread().name == "A":
            released.set()
            b_stored.wait(10)

    monkeypatch.setattr(inner, "tpc_abort", tpc_abort)
    errors = []

    def a():
        manager, connection = add_blob(db, "a", b"A" * 100)
        connection.root()["counter"]["n"] += 1
        with db.transaction() as other:  # makes A's counter write conflict
            other.root()["counter"]["n"] += 1
        try:
            manager.commit()
        except ConflictError:
            manager.abort()
        else:
            errors.append("A did not conflict")

    def b():
        released.wait(10)
        manager, connection = add_blob(db, "b", b"B" * 100)
        vote = connection._storage.tpc_vote

        def stored_then_vote(txn):
            b_stored.set()
            threading.Event().wait(0.2)  # A's abort finishes meanwhile
            return vote(txn)

        connection._storage.tpc_vote = stored_then_vote
        manager.commit()

    threads = [threading.Thread(target=f, name=f.__name__.upper()) for f in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert read_blob(db, "b") == b"B" * 100


def test_no_committed_blob_lost_under_forced_conflicts(db):
    """Three threads each commit 60 transactions that add a blob and bump one shared
    counter, so many conflict and abort; every committed blob is read back."""
    committed: list[str] = []
    lock = threading.Lock()

    def worker(number: int) -> None:
        manager = transaction.TransactionManager()
        connection = db.open(manager)
        for i in range(60):
            manager.begin()
            key = f"{number}-{i}"
            blob = Blob()
            with blob.open("w") as f:
                f.write(os.urandom(2048))
            connection.root()["items"][key] = blob
            connection.root()["counter"]["n"] += 1  # conflicts between threads
            try:
                manager.commit()
            except ConflictError:
                manager.abort()
            else:
                with lock:
                    committed.append(key)
        connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    lost = []
    for key in committed:
        try:
            read_blob(db, "items", key)
        except (POSKeyError, OSError):
            lost.append(key)
    assert committed
    assert lost == [], f"{len(lost)} of {len(committed)} committed blobs lost"
