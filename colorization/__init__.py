"""Automatic colorization of photographs: gray in, colour out.

The user API is here, loaded on first use so that `import colorization` stays cheap and the
inference path never loads the training stack (fastai):

- `colorize`, `load_model` (`colorization.inference`), `colorize_video` (`colorization.video`), `colorize_files`
  (`colorization.command`: the `colorize` command from Python);
- `colorization_dls` (`colorization.data`), `colorization_learner` (`colorization.models`); training runs are
  `colorization.train.train` (the module keeps its name: a package attribute `train` would hide it);
- `MODELS`, `create_model` (`colorization.models`).
"""
__version__ = "0.1.0"

import importlib

_LAZY = {'colorize': 'inference', 'load_model': 'inference', 'colorize_video': 'video', 'colorize_files': 'command',
         'colorization_dls': 'data', 'colorization_learner': 'models',
         'MODELS': 'models', 'create_model': 'models'}
__all__ = ['__version__', *_LAZY]

def __getattr__(name:str):
    "The user API, imported from its module on first use."
    if name not in _LAZY: raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    globals()[name] = value
    return value

def __dir__(): return sorted({*globals(), *_LAZY})
