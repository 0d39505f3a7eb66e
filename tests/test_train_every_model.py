"""Every registered model trains through the `grayscale2color` command and leaves a checkpoint and metrics that
`colorize` can use. On the landscape photos when `COLORIZATION_DATA` names them (a seeded subset of 64), else on
scikit-image's sample photos. `labclass` and `labgan` have their own, longer end-to-end tests
(`test_labclass_labgan.py`); here they run one short epoch like the others. Tiny: 32 px, 1 epoch."""
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from colorization.backbones import BACKBONES
from colorization.inference import colorize
from colorization.checkpoint import load_checkpoint
from colorization.models import MODELS

BIN = Path(sys.executable).parent


@pytest.fixture(scope='module')
def data(photos):
    "The landscape photos when the environment names them, else the sample photos."
    folder = os.environ.get('COLORIZATION_DATA')
    return Path(folder) if folder and Path(folder).is_dir() else photos


def _args(name:str) -> list[str]:
    "Command-line switches of a tiny run of `name`: Inception backbones random (no weights offline) at their smallest input."
    spec = MODELS[name]
    if spec.backbone is None or BACKBONES[spec.backbone].offline: return []
    return ['--no-pretrained', '--embed-size', str(BACKBONES[spec.backbone].min_size)]


@pytest.mark.parametrize('name', list(MODELS))
def test_trains_through_the_command(name, data, cache, tmp_path):
    out = tmp_path / name
    r = subprocess.run([str(BIN / 'grayscale2color'), '--model', name, '--data', str(data), '--limit', '64', '--size', '32',
                        '--bs', '8', '--epochs', '1', '--out', str(out), '--cache-dir', str(cache), *_args(name)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f'{name}: valid loss' in r.stdout and f'record in {out}' in r.stdout
    metrics = json.loads((out / 'metrics.json').read_text())
    config = json.loads((out / 'config.json').read_text())
    assert (metrics['model'], metrics['loss'], len(metrics['history'])) == (name, MODELS[name].loss, 1)
    assert 0 < metrics['n_valid'] < metrics['n_train'] and metrics['n_train'] + metrics['n_valid'] <= 64  # --limit 64, 80/20
    assert all(math.isfinite(metrics['final'][k]) for k in ('train_loss', 'valid_loss', 'psnr', 'ssim', 'delta_e2000'))
    # every record says whether a fusion model's backbone was pretrained
    spec = MODELS[name]
    assert config['pretrained'] == (None if not (spec.backbone or spec.encoder) else '--no-pretrained' not in _args(name))
    # the command is a process of its own: on glibc it keeps freed memory for reuse (see `keep_freed_memory`)
    assert config['freed_memory_kept'] == (platform.libc_ver()[0] == 'glibc')
    _, meta = load_checkpoint(out / 'model.safetensors')
    assert meta['model'] == name and meta['config']['size'] == 32
    # the checkpoint colours a photo of another size at its full resolution
    photo = Image.open(next(p for p in sorted(data.rglob('*.jpg')))).convert('RGB').resize((57, 41))
    result = colorize(photo, out / 'model.safetensors')
    assert result.size == (57, 41) and result.mode == 'RGB'
