"""The two models beyond the original, end to end: `labclass` (rebalanced classification) and `labgan` (conditional GAN)
train through `grayscale2color`, colorize through `colorize` at full resolution, and join the sweep's results table.
Tiny: sample photos, 32 px."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from colorization.checkpoint import load_checkpoint
from colorization.models import MODELS

BIN = Path(sys.executable).parent
TINY = ['--size', '32', '--bs', '4']


@pytest.fixture(scope='module')
def runs(photos, cache, tmp_path_factory):
    "Two-epoch runs of both models through the training command (labgan's L1 pre-training set explicitly: one epoch of two)."
    root = tmp_path_factory.mktemp('runs')
    for model, more in (('labclass', []), ('labgan', ['--gan-pretrain', '0.5'])):
        r = subprocess.run([str(BIN / 'grayscale2color'), '--model', model, '--data', str(photos), *TINY, '--epochs', '2',
                            '--out', str(root / model), '--cache-dir', str(cache), *more], capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    return root


def test_registered():
    assert (MODELS['labclass'].head, MODELS['labclass'].loss) == ('bins', 'ce')
    assert (MODELS['labgan'].head, MODELS['labgan'].losses) == ('ab', ('gan', 'lsgan'))
    assert MODELS['labgan'].learner is not None and MODELS['labgan'].fit is not None


def test_records(runs, cache):
    for model, loss in (('labclass', 'ce'), ('labgan', 'gan')):
        rec = json.loads((runs / model / 'metrics.json').read_text())
        assert (rec['model'], rec['loss'], len(rec['history'])) == (model, loss, 2)
        assert all(math.isfinite(rec['final'][k]) for k in ('valid_loss', 'psnr', 'delta_e2000'))
        assert {'model.safetensors', 'config.json', 'history.csv', 'curves.png', 'samples.png'} <= {p.name for p in (runs / model).iterdir()}
    gan = json.loads((runs / 'labgan' / 'metrics.json').read_text())['history']
    assert gan[0]['g_adv'] is None and math.isfinite(gan[1]['g_adv']) and math.isfinite(gan[1]['d_loss'])
    assert (runs / 'labgan' / 'models' / 'critic.safetensors').is_file()
    assert len(list((cache / 'class_weights').glob('*.npy'))) == 1   # once for the run's training split, in --cache-dir
    configs = {m: json.loads((runs / m / 'config.json').read_text()) for m in ('labclass', 'labgan')}
    assert (configs['labclass']['gan_pretrain'], configs['labgan']['gan_pretrain']) == (None, 0.5)


def test_checkpoints_hold_the_colorization_model(runs):
    m, meta = load_checkpoint(runs / 'labclass' / 'model.safetensors')
    assert (meta['model'], m.head, m.n_bins) == ('labclass', 'bins', len(m.bins))
    g, meta = load_checkpoint(runs / 'labgan' / 'model.safetensors')
    assert (meta['model'], type(g).__name__, g.head) == ('labgan', 'UnetGenerator', 'ab')


@pytest.mark.parametrize('model', ['labclass', 'labgan'])
def test_colorize_full_resolution(runs, photos, tmp_path, model):
    src = tmp_path / 'wide.jpg'
    Image.open(photos / 'coffee.jpg').resize((301, 157)).save(src)
    r = subprocess.run([str(BIN / 'colorize'), str(src), '--model_pt', str(runs / model / 'model.safetensors'),
                        '--model', model, '--out', str(tmp_path / 'out'), '-q'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = Image.open(tmp_path / 'out' / 'wide_color.png')
    assert out.size == (301, 157) and out.mode == 'RGB'


def test_sweep_table(photos, cache, tmp_path):
    r = subprocess.run([str(BIN / 'colorization-sweep'), '--model', 'labclass', 'labgan', '--epochs', '2', *TINY, '--limit', '16',
                        '--data', str(photos), '--cache-dir', str(cache), '--runs-dir', str(tmp_path / 'runs'), '--allow-dirty'],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    table = pd.read_csv(tmp_path / 'runs' / 'results.csv')
    assert {'labclass', 'labgan'} <= set(table.Model)
    loss_fn = table.set_index('Model')['Loss Fn']
    assert loss_fn['labclass'].lower() == 'ce' and 'gan' in loss_fn['labgan'].lower()


def test_colorize_temperature(runs, photos, tmp_path):
    "`--temperature` changes a classification model's colours; it is refused for a model without bins."
    sizes = {}
    for T in ('0', '1'):
        out = tmp_path / f'T{T}'
        r = subprocess.run([str(BIN / 'colorize'), str(photos / 'chelsea.jpg'), '--model_pt', str(runs / 'labclass' / 'model.safetensors'),
                            '--temperature', T, '--out', str(out), '-q'], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        sizes[T] = Image.open(out / 'chelsea_color.png')
    assert sizes['0'].size == Image.open(photos / 'chelsea.jpg').size
    assert sizes['0'].tobytes() != sizes['1'].tobytes()
    r = subprocess.run([str(BIN / 'colorize'), str(photos / 'chelsea.jpg'), '--model_pt', str(runs / 'labgan' / 'model.safetensors'),
                        '--temperature', '0.5', '--out', str(tmp_path / 'gan'), '-q'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "'bins' head" in r.stderr
    assert not (tmp_path / 'gan').exists()
