"""Fixtures for the component tests (helpers live in ingest_fixtures.py)."""

import pytest
from ingest_fixtures import example_gen_runner, find_real_dicom, make_clean_tree, make_planted_tree


@pytest.fixture(scope="session")
def real_dicom():
    return find_real_dicom()


@pytest.fixture(scope="session")
def clean_tree(tmp_path_factory):
    return make_clean_tree(tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="session")
def planted_tree(tmp_path_factory, real_dicom):
    return make_planted_tree(tmp_path_factory.mktemp("planted"), real_dicom)


@pytest.fixture
def run_example_gen(tmp_path):
    return example_gen_runner(tmp_path)
