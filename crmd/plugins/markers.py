"""The pluggy markers, in a module of their own so that importing them costs nothing."""

import pluggy

PROJECT = "crmd"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
