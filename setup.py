"""Packaging shim: the metadata of collective.objectdetection is in pyproject.toml."""

from setuptools import setup


setup()
