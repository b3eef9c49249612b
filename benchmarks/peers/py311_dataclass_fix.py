"""(Adapted from the shared peer scripts, ../shared/peers/py311_dataclass_fix.py; unchanged apart from this line.)
Import-time shim (installed as a .pth into the fairseq venv; NOT peer code).
Python >= 3.11 refuses dataclass fields whose default is an unhashable instance
(e.g. `common: CommonConfig = CommonConfig()` in fairseq 0.12.2 / hydra-core 1.0):
  ValueError: mutable default <class ...CommonConfig> for field common is not allowed
Python <= 3.10 only rejected list/dict/set. Restore that behaviour by giving such default
instances' classes the identity hash before dataclasses checks them (fairseq reads
field.default, so converting to default_factory is not an option)."""

import dataclasses

_orig_get_field = dataclasses._get_field


def _get_field(cls, a_name, a_type, *args, **kwargs):
    default = cls.__dict__.get(a_name, dataclasses.MISSING)
    if isinstance(default, dataclasses.Field):
        default = default.default
    if (
        default is not dataclasses.MISSING
        and not isinstance(default, (list, dict, set, type))
        and type(default).__hash__ is None
    ):
        type(default).__hash__ = object.__hash__
    return _orig_get_field(cls, a_name, a_type, *args, **kwargs)


dataclasses._get_field = _get_field
