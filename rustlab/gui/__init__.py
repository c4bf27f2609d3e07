"""`rustlab gui`: a drag-and-drop window over the shared Predictor.

Modules: ``app`` (the Tk window), ``detail`` and ``result_list`` (its two panels), ``worker``
(the prediction thread and its queues), ``results`` (the session's rows and CSV export, no Tk),
``render`` (thumbnails and overlays, PIL only). Importing this package does not import Tk;
only ``launch`` does, so the rest of rustlab never needs it. May import the core and
rustlab.inference (the one Predictor); never the trainer or the CLI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rustlab.errors import RustlabError


class GuiUnavailable(RustlabError):
    """Tk, tkinterdnd2 or a display is missing; the message says what to install or set."""


def require_gui():
    """Import Tk and tkinterdnd2, or fail with one line saying what to install."""
    try:
        import tkinter  # noqa: F401
        from PIL import ImageTk  # noqa: F401  (Pillow's Tk bridge, needs tkinter too)
    except ImportError:
        raise GuiUnavailable(
            "the GUI needs Tk, which this Python lacks: install it (Debian/Ubuntu: sudo apt install python3-tk; "
            "Fedora: sudo dnf install python3-tkinter; macOS/Homebrew: brew install python-tk)") from None
    try:
        import tkinterdnd2  # noqa: F401
    except ImportError:
        raise GuiUnavailable("the GUI needs tkinterdnd2 for drag and drop: pip install 'rustlab[gui]' "
                             "(or pip install tkinterdnd2)") from None


def create_root():
    """The Tk root with tkdnd loaded, or a one-line GuiUnavailable (no display, broken tkdnd)."""
    import tkinter

    from tkinterdnd2 import TkinterDnD

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise GuiUnavailable("no display to open the window on (DISPLAY is not set): run `rustlab gui` in a desktop "
                             "session, over `ssh -X`, or under Xvfb (xvfb-run rustlab gui)")
    try:
        return TkinterDnD.Tk()
    except tkinter.TclError as exc:
        raise GuiUnavailable(f"cannot open the window ({str(exc).splitlines()[0]}): check DISPLAY, or run "
                             "under Xvfb (xvfb-run rustlab gui)") from None
    except RuntimeError as exc:  # tkinterdnd2 raises RuntimeError when its tkdnd library will not load
        raise GuiUnavailable(f"tkinterdnd2 is installed but its tkdnd library does not load here ({exc}); "
                             "reinstall it: pip install --force-reinstall tkinterdnd2") from None


def newest_checkpoint(runs="runs") -> Path | None:
    """The most recently written ``runs/**/best.safetensors``, or None."""
    import glob

    # glob.glob, unlike Path.glob before Python 3.13, follows symlinked run folders
    found = [Path(p) for p in glob.glob(os.path.join(glob.escape(str(runs)), "**", "best.safetensors"),
                                        recursive=True) if os.path.isfile(p)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def launch(checkpoint=None, images=(), device: str = "auto") -> None:
    """Open the window and run until it is closed."""
    require_gui()
    if checkpoint is not None:
        from rustlab.checkpoint import read_metadata

        read_metadata(checkpoint)  # a wrong path or a foreign file is one line, before any window
    else:
        from rustlab.errors import RustlabError
        from rustlab.inference.default_model import default_checkpoint

        try:
            checkpoint = default_checkpoint()  # the model rustlab ships (docs/model-card.md)
        except RustlabError:
            checkpoint = newest_checkpoint()
    root = create_root()
    from rustlab.gui.app import App

    # leave one core to the UI thread: torch's intra-op threads on every core make the window
    # stutter during a batch (process-wide, so only here, not in the Apps the tests build)
    app = App(root, checkpoint, device=device, torch_threads=max(1, (os.cpu_count() or 2) - 1))
    if checkpoint is None:
        root.after(200, app.ask_checkpoint)
    else:
        print(f"rustlab gui: loading {checkpoint}", file=sys.stderr)
    if images:
        app.submit(images)
    root.mainloop()
