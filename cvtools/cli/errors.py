"""Library errors as the command line says them: API parameter names become the options.

The library's messages name parameters the way the Python API does (``octaves must be at least
1``, ``pass overwrite=True to replace it``) and list them in ``exc.params``
(:class:`cvtools.errors.CvtoolsError`). Here each listed name becomes the running command's
option where the message names it: as its first word (``--octaves must be at least 1``), quoted
as ```name``` (``try a lower --lr``), or as ``name=value``, which becomes ``--flag value``
(``True``: the flag alone; ``False``: its ``--no-`` form). The option is looked up among the
command's click parameters by its Python name, then in :data:`ALIASES`, else spelled
``--name-with-dashes``.
"""

from __future__ import annotations

import re
import shlex
from typing import Optional

import click

#: API parameters whose option is not ``--`` + the name with dashes (and not a click parameter
#: of that name): the API's name -> the option.
ALIASES = {
    "backbone_weights": "--weights",
    "style_layer_weights": "--layer-weights",
    "new_settings": "--resume-with-new-settings",
    # training settings that no option sets
    "crop_scale": "crop_scale (Python API)",
    "residual_blocks": "residual_blocks (Python API)",
}

_VALUE = r"=(?:(True|False)\b|'([^']*)'|\"([^\"]*)\"|([^\s,;)]+))"


def _command(ctx: Optional[click.Context]):
    """The command that is running: the subcommand a group context invoked, else its own."""
    if ctx is None:
        return None
    command = ctx.command
    name = getattr(ctx, "invoked_subcommand", None)
    if name and isinstance(command, click.Group):
        try:
            return command.get_command(ctx, name) or command
        except Exception:  # a subcommand that cannot load: default spellings
            return command
    return command


def option_for(name: str, command=None):
    """(flag, negative flag or None) for the API parameter ``name`` under ``command``."""
    for p in getattr(command, "params", ()) or ():
        if isinstance(p, click.Option) and p.name == name:
            longs = [o for o in p.opts if o.startswith("--")]
            negative = [o for o in p.secondary_opts if o.startswith("--")]
            return (longs or p.opts)[0], (negative[0] if negative else None)
        if isinstance(p, click.Argument) and p.name == name:
            return p.human_readable_name, None
    return ALIASES.get(name, "--" + name.replace("_", "-")), None


def flag_text(text: str, params, command=None) -> str:
    """``text`` with each name in ``params`` as its option where the text names it: as its first
    word (``octaves must be ...``), as ``name=value`` anywhere, or quoted as ```name```."""
    for name in params:
        flag, negative = option_for(name, command)
        word = rf"(?<![\w./\\'\"-]){re.escape(name)}"

        def as_flag(m, flag=flag, negative=negative):
            boolean, single, double, bare = m.groups()
            if boolean == "True":
                return flag
            if boolean == "False":
                return negative or f"{flag} false"
            if bare is not None:
                return f"{flag} {bare}"
            return f"{flag} {shlex.quote(single if single is not None else double)}"

        text = re.sub(word + _VALUE, as_flag, text)
        text = text.replace(f"`{name}`", flag)
        if re.match(re.escape(name) + r"(?![\w/\\=-]|\.\w)", text):
            text = flag + text[len(name):]
    return text


def cli_message(exc: BaseException, ctx: Optional[click.Context] = None) -> str:
    """``str(exc)`` with the parameters it names (``exc.params``) as the options of the running
    command (``ctx``'s, else click's current context's). Other exceptions: ``str(exc)``."""
    params = getattr(exc, "params", ())
    if not params:
        return str(exc)
    from cvtools.errors import ImageError, safe_path

    command = _command(ctx if ctx is not None else click.get_current_context(silent=True))
    if isinstance(exc, ImageError):  # the reason only: a file name is never rewritten
        return f"{safe_path(exc.path)}: {flag_text(exc.reason, params, command)}"
    return flag_text(str(exc), params, command)


def file_message(path, message: str, exc: Optional[BaseException]) -> str:
    """A batch's one-line error for ``path`` (``message``, from :func:`cvtools.batch.run`) with
    the parameters ``exc`` names as options."""
    if exc is None or not getattr(exc, "params", ()):
        return message
    from cvtools.batch import error_line

    return error_line(path, cli_message(exc))
