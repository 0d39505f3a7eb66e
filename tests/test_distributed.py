"""Data-parallel training on two CPU processes (gloo) under `accelerate launch`: each rank trains on its own half of
the epoch, and the gradients are averaged (identical weights on both ranks after training on different data)."""
import json
import os
import socket
import subprocess
import sys

import pytest

from colorization.data import sample_folder

ENV = {**os.environ, 'PYTHONWARNINGS': 'ignore'}


def _free_port() -> int:
    "A free local TCP port for the process group's rendezvous (another launch may hold the default one)."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "Two processes, one epoch of labnet on scikit-image's sample photos at 32 px, batches of 2."
    d = tmp_path_factory.mktemp('dist')
    photos = sample_folder(d / 'photos', size=80)
    cmd = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
           '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', str(_free_port()),
           '-m', 'colorization.distributed', '--model', 'labnet',
           '--data', str(photos), '--size', '32', '--bs', '2', '--epochs', '1', '--out', str(d / 'run'),
           '--cache-dir', str(d / 'cache')]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    return [json.loads((d / 'run' / f'rank{i}.json').read_text()) for i in range(2)], r.stdout, d / 'run'


def test_both_ranks_ran_on_gloo(run):
    (r0, r1), stdout, _ = run
    assert [r0['rank'], r1['rank']] == [0, 1] and r0['world_size'] == r1['world_size'] == 2
    assert r0['backend'] == r1['backend'] == 'gloo'
    assert 'rank 0/2 (gloo)' in stdout and 'rank 1/2 (gloo)' in stdout


def test_each_rank_saw_half(run):
    (r0, r1), _, _ = run
    e0, e1 = r0['per_epoch'][0], r1['per_epoch'][0]
    n = r0['n_train']
    assert set(e0['idxs']).isdisjoint(e1['idxs']) and set(e0['idxs']) | set(e1['idxs']) == set(range(n))
    assert len(e0['idxs']) == len(e1['idxs']) == n // 2
    assert e0['batches'] == e1['batches'] == (n // 2) // 2 > 0      # batches of 2, the partial last one dropped
    assert e0['images'] == e1['images'] == 2 * e0['batches']
    assert r0['single_process_batches'] == n // 2                   # one process alone would run twice as many


def test_gradients_synchronised(run):
    (r0, r1), _, _ = run
    assert r0['first_batch'] != r1['first_batch']                   # different data on each rank ...
    assert r0['weights'] == r1['weights']                           # ... and yet identical weights after training
    assert r0['initial_weights'] == r1['initial_weights'] != r0['weights']  # same start, and training moved them
    assert r0['buffers'] == r1['buffers']                           # batch-norm statistics: rank 0's, broadcast by DDP


def test_loss_finite_and_checkpoint(run):
    (r0, r1), _, out = run
    assert r0['loss_finite'] and r1['loss_finite'] and len(r0['losses']) == r0['per_epoch'][0]['batches']
    assert (out / 'model.safetensors').exists() and (out / 'history.csv').exists()
    from colorization.checkpoint import load_checkpoint
    model, meta = load_checkpoint(out / 'model.safetensors', model='labnet')
    assert meta['config']['processes'] == 2


def test_labgan_refused_before_anything_starts(tmp_path):
    "labgan's two-phase GAN fit is not distributed: the command says so and exits 2, having read, started and written nothing."
    out = tmp_path / 'run'
    r = subprocess.run([sys.executable, '-m', 'colorization.distributed', '--model', 'labgan', '--data', str(tmp_path / 'nowhere'),
                        '--out', str(out)], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "model 'labgan'" in r.stderr and 'not distributed' in r.stderr and 'grayscale2color' in r.stderr
    assert 'Traceback' not in r.stderr and not out.exists()
