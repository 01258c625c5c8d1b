"""Click parameter types: the command line is parsed once, into the values the library takes.

Each type calls the library's own parser (:mod:`cvtools.specs`, :mod:`cvtools.dream.objective`,
:mod:`cvtools.visualize.model`), so a Python caller and the command line get the same values and
checks; a bad value is a usage error that click prefixes with the option's name
(``Invalid value for '--tile': ...``). Library modules are imported in ``convert`` only, so
``cvtools --help`` stays instant.
"""

import math

import click

#: The help text's description of the channel grammar, shared by every option that takes one.
CHANNELS_HELP = ("CHANNELS: numbers (3,7), ranges with the end included (0-15: 16 channels), Python slices with "
                 "the end excluded (0:16: the same 16; 8: to the last), or all")


SIZE_HELP = ("Shrink so the longer side is at most this many pixels first (default: keep the input size); "
             "smaller images keep their size unless --enlarge.")
ENLARGE_HELP = "With --size: also scale smaller images up to it (the default only shrinks; enlarged photos look soft)."


class AddedLaterOption(click.Option):
    """An option added after outputs were made: left out of their provenance marker while unset
    (``provenance_from_click``), so earlier outputs keep their digest and re-runs still find them."""

    omit_when_unset = True


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf: nan passes every range check (nan < 0 and
    nan > 1 are both false), and then failed per photo after the model had loaded."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class Tile(click.ParamType):
    """``auto``, ``off`` or a tile side in pixels (at least ``minimum``) -> "auto", None or an int."""

    name = "tile"

    def __init__(self, minimum: int):
        self.minimum = minimum

    def get_metavar(self, param, *args, **kwargs):
        return "auto|off|N"

    def convert(self, value, param, ctx):
        from cvtools.errors import UsageError
        from cvtools.specs import parse_tile

        try:
            return parse_tile(value, self.minimum)
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


class Channels(click.ParamType):
    """A channel spec (see :data:`CHANNELS_HELP`) -> :class:`cvtools.specs.ChannelSpec`; the
    layer's channel count resolves it later (``spec.resolve(count)``)."""

    name = "channels"

    def get_metavar(self, param, *args, **kwargs):
        return "CHANNELS"

    def convert(self, value, param, ctx):
        from cvtools.errors import UsageError
        from cvtools.specs import ChannelSpec, parse_channel_spec

        if value is None or isinstance(value, ChannelSpec):
            return value
        try:
            return parse_channel_spec(value, label=repr(str(value)))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


class LayerTargetType(click.ParamType):
    """``NAME`` or ``NAME:CHANNELS`` -> :class:`cvtools.dream.objective.LayerTarget` (whether the
    layer exists and has those channels is checked once the backbone is loaded)."""

    name = "layer"

    def get_metavar(self, param, *args, **kwargs):
        return "NAME[:CHANNELS]"

    def convert(self, value, param, ctx):
        from cvtools.dream.objective import LayerTarget, parse_layer_target
        from cvtools.errors import UsageError

        if isinstance(value, LayerTarget):
            return value
        try:
            return parse_layer_target(value)
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


class Target(click.ParamType):
    """``top1``, a class index or a class name, kept as text: whose class names count (ImageNet's
    or a ``--model``'s own) is known only once all options are parsed; the command resolves it
    (:func:`class_target`)."""

    name = "target"

    def get_metavar(self, param, *args, **kwargs):
        return "top1|INDEX|NAME"


def class_target(text, model_opts):
    """--target as the library takes it: for a registered backbone, None or an ImageNet class
    index (checked now, without torch; a typo is click's usage error with a suggestion); for
    ``--model``, None, an index, or a name looked up in the model's own classes once it loads."""
    if text is None or (isinstance(text, int) and not isinstance(text, bool)):
        return text
    if model_opts.get("model") is None:
        from cvtools.backbones.categories import parse_class_target
        from cvtools.errors import UsageError

        try:
            return parse_class_target(text)
        except UsageError as exc:
            raise click.BadParameter(str(exc), param_hint="'--target' / '-t'") from None
    if str(text).strip().lower() in ("", "top1", "top", "auto"):
        return None
    return int(text) if str(text).strip().isdigit() else str(text).strip()


def with_flag(flag: str, exc):
    """A library UsageError found after parsing (a channel the loaded layer lacks) as the CLI's
    one-line error naming the option: ``--layer: blocks.10:200: ...``."""
    from cvtools.errors import UsageError

    return UsageError(f"{flag}: {exc}")
