"""`colorization-bench` end to end on real photos at tiny sizes: every section is there, every throughput positive (no timing assertions)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from colorization.data import sample_folder

ENV = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
TRAIN_SECTIONS = ('model_only', 'end_to_end', 'learner', 'naive')


def _bench(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'colorization.bench', *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=900)


@pytest.fixture(scope='module')
def result(tmp_path_factory):
    "One tiny run on scikit-image's sample photos (32 px, batch 4, 2 timed steps), both models."
    d = tmp_path_factory.mktemp('bench')
    photos = sample_folder(d / 'photos', size=80)
    out = d / 'out.json'
    r = _bench('--json', str(out), '--data', str(photos), '--size', '32', '--bs', '4', '--steps', '2', '--warmup', '1',
               '--models', 'labnet,preeff', '--cache-dir', str(d / 'cache'), '--infer-runs', '1', '--infer-images', '3')
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text()), r.stdout


def test_all_sections(result):
    res, stdout = result
    assert set(res) >= {'settings', 'environment', 'memory_method', 'models', 'command'}
    assert res['settings']['size'] == 32 and res['settings']['bs'] == 4
    assert res['command'].startswith('colorization-bench --json')
    for name in ('labnet', 'preeff'):
        m = res['models'][name]
        for sec in TRAIN_SECTIONS:
            r = m[sec]
            assert r['images_per_s'] > 0 and r['images_per_cpu_s'] > 0 and r['steps'] == 2, (name, sec, r)
            assert r['peak_rss_mb'] > 0, (name, sec, r)
        inf = m['inference']
        assert inf['latency_s'] > 0 and inf['folder_images_per_s'] > 0 and inf['folder_images'] == 3 and inf['photo'] == '1024x682'
        for k in ('end_to_end/model_only', 'end_to_end/naive', 'learner/model_only'):
            assert m['ratios'][k] > 0 and m['ratios_cpu_time'][k] > 0
    assert res['models']['preeff']['backbone'] == 'efficientnet_lite0'
    assert 'end_to_end/naive' in stdout  # the summary table with the ratios


def test_bad_input(tmp_path):
    r = _bench('--data', str(tmp_path / 'nowhere'), '--json', str(tmp_path / 'x.json'))
    assert r.returncode == 2 and 'does not exist' in r.stderr and not (tmp_path / 'x.json').exists()
    r = _bench('--sections', 'model_only,warp', '--data', str(sample_folder(tmp_path / 'p', size=80)))
    assert r.returncode == 2 and 'unknown sections' in r.stderr
    r = _bench('--models', 'nonet', '--data', str(tmp_path / 'p'), '--sections', 'model_only', '--cache-dir', str(tmp_path / 'c'))
    assert r.returncode == 2 and 'unknown model' in r.stderr
