"""The window: menu, toolbar, drop zone and detail panel, session list, status bar; wires drops
and dialogs to the worker and drains the worker's messages with ``after`` polling."""

from __future__ import annotations

import queue
import time
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, ttk

from rustlab.gui.detail import DetailPanel
from rustlab.gui.result_list import ResultList
from rustlab.gui.results import CANCELLED, DONE, ERROR, QUEUED, ResultRow, Session
from rustlab.gui.worker import ModelFailed, ModelReady, Queued, Worker

IMAGE_TYPES = [("Images", " ".join(f"*{e} *{e.upper()}" for e in
                                    (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"))),
               ("All files", "*")]
APP = "rustlab"


class App:
    POLL_MS = 40  # how often the UI drains worker messages
    POLL_BUDGET_S = 0.03  # at most this long per drain, so a burst of 200 results cannot freeze the window

    def __init__(self, root, checkpoint=None, device: str = "auto", torch_threads: int | None = None):
        self.root = root
        self.session = Session()
        self.worker = Worker(device, torch_threads)
        self.model: ModelReady | None = None
        self.loading: str | None = None
        self.follow = True  # show each new result until the user picks a row
        self._wave_total = self._wave_done = 0  # files in the current burst of work
        self._expanding = 0  # drops whose folders the worker is still listing
        self._closed = False
        self._to_show: ResultRow | None = None  # the newest result of a drain, shown once it ends
        self._held: list[str] = []  # dropped before any model was loaded
        self.show_overlay = tk.BooleanVar(master=root, value=True)
        self.show_overlay.trace_add("write", lambda *_: self._refresh_detail())

        if root.tk.call("tk", "windowingsystem") == "x11":
            ttk.Style(root).theme_use("clam")  # X11's "default" theme looks dated; elsewhere keep native
        root.title(f"{APP} — no model loaded")
        root.geometry("1200x720")
        root.minsize(900, 560)
        self._build()
        self._bind_keys()
        self._register_drop()
        root.protocol("WM_DELETE_WINDOW", self.close)
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        self._poll_id = root.after(self.POLL_MS, self._poll)

    # --- layout --------------------------------------------------------------------------------
    def _build(self):
        root = self.root
        mod = "Cmd" if self._aqua() else "Ctrl"
        menubar = tk.Menu(root)
        file_menu = tk.Menu(menubar, tearoff=False)
        file_menu.add_command(label="Open images…", accelerator=f"{mod}+O", command=self.open_files)
        file_menu.add_command(label="Open folder…", accelerator=f"{mod}+Shift+O", command=self.open_folder)
        file_menu.add_command(label="Load model…", accelerator=f"{mod}+L", command=self.load_checkpoint)
        file_menu.add_separator()
        file_menu.add_command(label="Export results as CSV…", accelerator=f"{mod}+S", command=self.export_csv)
        file_menu.add_command(label="Clear results", command=self.clear)
        file_menu.add_separator()
        file_menu.add_command(label="Quit", accelerator=f"{mod}+Q", command=self.close)
        view_menu = tk.Menu(menubar, tearoff=False)
        view_menu.add_checkbutton(label="Show where the rust is", accelerator=f"{mod}+G",
                                  variable=self.show_overlay)
        menubar.add_cascade(label="File", menu=file_menu)
        menubar.add_cascade(label="View", menu=view_menu)
        root.configure(menu=menubar)

        bar = ttk.Frame(root, padding=(8, 6))
        bar.pack(side="top", fill="x")
        self.open_button = ttk.Button(bar, text="Open…", command=self.open_files)
        self.folder_button = ttk.Button(bar, text="Open folder…", command=self.open_folder)
        self.model_button = ttk.Button(bar, text="Load model…", command=self.load_checkpoint)
        self.export_button = ttk.Button(bar, text="Export CSV…", command=self.export_csv)
        self.overlay_check = ttk.Checkbutton(bar, text="Show where the rust is", variable=self.show_overlay)
        for widget in (self.open_button, self.folder_button, self.model_button, self.export_button):
            widget.pack(side="left", padx=(0, 6))
        self.overlay_check.pack(side="left", padx=(12, 0))
        self.model_label = ttk.Label(root, padding=(10, 0, 10, 6), text="No model loaded: File > Load model…")
        self.model_label.pack(side="top", fill="x")

        status = ttk.Frame(root, padding=(8, 4))
        status.pack(side="bottom", fill="x")
        self.progress = ttk.Progressbar(status, length=220, mode="determinate", maximum=100)
        self.progress.pack(side="left")
        self.stop_button = ttk.Button(status, text="Stop", command=self.stop, state="disabled")
        self.stop_button.pack(side="left", padx=6)
        self.status = ttk.Label(status, text="Ready.")
        self.status.pack(side="left", padx=6, fill="x", expand=True)

        panes = ttk.PanedWindow(root, orient="horizontal")
        panes.pack(side="top", fill="both", expand=True, padx=8, pady=(0, 4))
        self.detail = DetailPanel(panes)
        self.results = ResultList(panes, on_select=self._on_user_select)
        panes.add(self.detail, weight=0)
        panes.add(self.results, weight=1)

    def _aqua(self) -> bool:
        return self.root.tk.call("tk", "windowingsystem") == "aqua"

    def _bind_keys(self):
        mod = "Command" if self._aqua() else "Control"
        for key, action in (("o", self.open_files), ("O", self.open_folder), ("l", self.load_checkpoint),
                            ("s", self.export_csv), ("q", self.close), ("g", self.toggle_overlay)):
            self.root.bind_all(f"<{mod}-{key}>", lambda e, a=action: (a(), "break")[1])
        self.root.bind_all("<Escape>", lambda e: self.stop())

    def _register_drop(self):
        from tkinterdnd2 import COPY, DND_FILES

        # the whole window is the drop target (tkdnd walks up from the widget under the pointer),
        # the left panel shows it
        self.root.drop_target_register(DND_FILES)
        self.root.dnd_bind("<<DropEnter>>", lambda e: (self.detail.set_hover(True), COPY)[1])
        self.root.dnd_bind("<<DropLeave>>", lambda e: (self.detail.set_hover(False), e.action)[1])
        self.root.dnd_bind("<<Drop>>", self._on_drop)

    def _on_drop(self, event):
        from tkinterdnd2 import COPY

        self.detail.set_hover(False)
        # tkdnd's data is a Tcl list: paths with spaces come in braces
        self.submit(self.root.tk.splitlist(event.data))
        return COPY

    # --- actions -------------------------------------------------------------------------------
    def submit(self, paths):
        """Predict files and folders (what a drop, Open… and the command line do)."""
        paths = [str(p) for p in paths if str(p).strip()]
        if not paths:
            return
        if self.model is None:
            # nothing to predict with yet: keep the files until a model loads, rather than
            # turning each into an error row
            self._held.extend(paths)
            if self.loading is None:
                self._say(f"{len(self._held)} item(s) wait for a model: File > Load model…", error=True)
            return
        self.follow = True
        self._expanding += 1
        self.worker.submit(paths)
        self._update_progress()

    def open_files(self):
        paths = filedialog.askopenfilenames(parent=self.root, title="Open images", filetypes=IMAGE_TYPES)
        if paths:
            self.submit(self.root.tk.splitlist(paths) if isinstance(paths, str) else paths)

    def open_folder(self):
        path = filedialog.askdirectory(parent=self.root, title="Open a folder of images", mustexist=True)
        if path:
            self.submit([path])

    def load_checkpoint(self, path=None):
        if path is None:
            runs = Path("runs")
            path = filedialog.askopenfilename(
                parent=self.root, title="Load a rustlab checkpoint", initialdir=str(runs) if runs.is_dir() else None,
                filetypes=[("rustlab checkpoints", "*.safetensors"), ("All files", "*")])
            if not path:
                return
        self.loading = str(path)
        self.root.title(f"{APP} — loading {Path(path).name}…")
        self.worker.load(path)
        self._update_progress()

    def ask_checkpoint(self):
        """No checkpoint given and none under runs/: ask, and explain how to get one if cancelled."""
        self.load_checkpoint()
        if self.loading is None and self.model is None:
            waiting = f" {len(self._held)} item(s) wait for it." if self._held else ""
            self._say(f"No model loaded: File > Load model… (train one with `rustlab train`).{waiting}", error=True)

    def export_csv(self, path=None) -> int:
        if not self.session.finished():
            self._say("Nothing to export yet: drop some photos first.")
            return 0
        if path is None:
            path = filedialog.asksaveasfilename(
                parent=self.root, title="Export results", defaultextension=".csv",
                initialfile=time.strftime("rustlab-results-%Y%m%d-%H%M%S.csv"), filetypes=[("CSV", "*.csv")])
            if not path:
                return 0
        try:
            count = self.session.to_csv(path)
        except OSError as exc:
            self._say(f"Could not write {path}: {exc.strerror or exc}", error=True)
            return 0
        self._say(f"Exported {count} result(s) to {path}")
        return count

    def toggle_overlay(self):
        self.show_overlay.set(not self.show_overlay.get())

    def stop(self):
        """Drop what is still queued; the file being predicted right now finishes."""
        had_work = bool(self._wave_total or self._expanding or self._held)
        self.worker.cancel()
        self._held.clear()
        for row_id in self.session.cancel_pending():
            self.results.update_row(self.session.rows[row_id])
        self._wave_total = self._wave_done = 0
        self._expanding = 0
        self._update_progress()
        if had_work:
            self._say("Stopped; queued files were skipped.")

    def clear(self):
        self.stop()
        self.session.clear()
        self.results.clear()
        self.detail.show_empty()
        self._say("Cleared.")

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.root.after_cancel(self._poll_id)
        except tk.TclError:
            pass
        self.worker.close(timeout=1.0)
        self.root.destroy()

    # --- worker messages -----------------------------------------------------------------------
    def _poll(self):
        deadline = time.perf_counter() + self.POLL_BUDGET_S
        self._to_show = None
        try:
            while time.perf_counter() < deadline:
                self._handle(self.worker.messages.get_nowait())
        except queue.Empty:
            pass
        if self._to_show is not None:  # one preview per drain, not one per result of a burst
            self.detail.show(self._to_show, self.show_overlay.get())
        self._update_progress()
        if not self._closed:
            self._poll_id = self.root.after(self.POLL_MS, self._poll)

    def _handle(self, message):
        if isinstance(message, ResultRow):
            self._finished(message)
        elif isinstance(message, Queued):
            self._queued(message)
        elif isinstance(message, ModelReady):
            self.model, self.loading = message, None
            self.root.title(f"{APP} — {message.name}")
            note = f" · no overlay: {message.note}" if message.note else ""
            self.model_label.configure(text=f"Model: {message.summary}{note}", foreground="")
            self.overlay_check.configure(state="normal" if message.explains or message.shows_masks
                                         else "disabled")
            self._say(f"Loaded {message.checkpoint}")
            held, self._held = self._held, []
            self.submit(held)
        elif isinstance(message, ModelFailed):
            self.loading = None
            self.root.title(f"{APP} — {self.model.name}" if self.model else f"{APP} — no model loaded")
            keep = f" Still using {self.model.name}." if self.model else " File > Load model… to pick another."
            self._say(f"Could not load the model: {message.message}.{keep}", error=True)

    def _queued(self, message: Queued):
        self._expanding = max(0, self._expanding - 1)
        stale = message.generation != self.worker.generation
        for row in message.rows:
            if stale and row.status == QUEUED:
                row.status = CANCELLED
            self.session.add(row)
            self.results.add(row)
            if row.status == QUEUED:
                self._wave_total += 1
        if not message.rows:
            self._say(f"No images found in {', '.join(Path(p).name or p for p in message.paths)}", error=True)
        elif self.follow:
            self.results.see(message.rows[0].id)

    def _finished(self, row: ResultRow):
        previous = self.session.rows.get(row.id)
        if previous is None:
            return  # cleared meanwhile
        if previous.status == QUEUED:
            self._wave_done += 1
        self.session.update(row)
        self.results.update_row(row)
        if self.follow or self.results.selected == row.id:
            self.results.select(row.id, notify=False, see=self.follow)
            self._to_show = row

    def _on_user_select(self, row_id: int):
        self.follow = False
        self.detail.show(self.session.rows[row_id], self.show_overlay.get())

    def _refresh_detail(self):
        row = self.detail.row
        if row is not None:
            self.detail.show(self.session.rows.get(row.id, row), self.show_overlay.get())

    # --- progress and status -------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._expanding > 0 or self._wave_done < self._wave_total or self.loading is not None

    def _update_progress(self):
        if self._wave_total and self._wave_done >= self._wave_total and not self._expanding:
            self._wave_total = self._wave_done = 0  # the burst is over
            done, errors = self.session.count(DONE), self.session.count(ERROR)
            self._say(f"{done} result(s), {errors} unreadable. Drop more photos anywhere in the window.")
        if self._wave_total:
            self.progress.configure(mode="determinate", value=100.0 * self._wave_done / self._wave_total)
            self._say(f"Predicting: {self._wave_done} of {self._wave_total} done…")
        elif self._expanding or self.loading:
            self.progress.configure(mode="indeterminate")
            self.progress.step(4)
            self._say(f"Loading {Path(self.loading).name}…" if self.loading else "Listing folders…")
        else:
            self.progress.configure(mode="determinate", value=0)
        self.stop_button.configure(state="normal" if self._wave_total or self._expanding else "disabled")

    def _say(self, text: str, error: bool = False):
        self.status.configure(text=text, foreground="#b71c1c" if error else "")
