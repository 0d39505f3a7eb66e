"""Fixtures shared by the test modules: scikit-image's sample photos and a cache folder, each made once per module."""
import pytest

from colorization.data import sample_folder


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    "A folder of scikit-image's colour sample photos."
    return sample_folder(tmp_path_factory.mktemp('photos'))


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    "An empty cache folder (images, embeddings, class weights) of the module's own."
    return tmp_path_factory.mktemp('cache')
