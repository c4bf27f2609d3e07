"""The large left panel: an invitation to drop photos while the session is empty, then the
selected result in full: the photo (with the Grad-CAM or mask overlay), verdict, confidence
number and bar, time and file. The photo takes whatever height the text leaves."""

from __future__ import annotations

import tkinter as tk
from tkinter import font as tkfont

from PIL import ImageTk

from rustlab.gui import render
from rustlab.gui.results import (DONE, ERROR, ResultRow, format_confidence, format_label, format_percent,
                                 format_seconds)

IDLE_BORDER = "#b8bfca"
HOVER_BORDER = "#1e6fd9"
PANEL = "#f3f5f8"
MUTED = "#5f6368"
WIDTH = 400  # requested width of the photo area; the user can drag the divider


class DetailPanel(tk.Frame):
    def __init__(self, master):
        super().__init__(master, background=PANEL, highlightthickness=3, highlightbackground=IDLE_BORDER,
                         highlightcolor=IDLE_BORDER, padx=14, pady=12)
        base = tkfont.nametofont("TkDefaultFont")
        size = int(base.cget("size"))
        big = base.copy()
        big.configure(size=size + 13, weight="bold")
        mid = base.copy()
        mid.configure(size=size + 3, weight="bold")
        self._fonts = (big, mid)  # keep references: Tk forgets fonts Python drops
        self.row: ResultRow | None = None
        self.overlay_shown = False
        self._hover = False
        self._picture = None  # the PIL picture on show (overlay applied), refitted on resize
        self._limit = 3.0  # how much _picture may be enlarged
        self._photo = None

        text = tk.Frame(self, background=PANEL)
        text.pack(side="bottom", fill="x")
        self.canvas = tk.Canvas(self, width=WIDTH, height=WIDTH, background=PANEL, highlightthickness=0)
        self.canvas.pack(side="top", fill="both", expand=True, pady=(0, 10))
        self.verdict = tk.Label(text, font=big, background=PANEL, anchor="w")
        self.confidence = tk.Label(text, font=mid, background=PANEL, anchor="w")
        self.bar = tk.Canvas(text, width=WIDTH, height=16, background=PANEL, highlightthickness=0)
        self.info = tk.Label(text, background=PANEL, foreground=MUTED, anchor="w", justify="left")
        self.file = tk.Label(text, background=PANEL, anchor="w", justify="left")
        self.caption = tk.Label(text, background=PANEL, foreground=MUTED, anchor="w", justify="left")
        self._wrapped = (self.info, self.file, self.caption)
        for widget in (self.verdict, self.confidence, self.bar, *self._wrapped):
            widget.pack(side="top", fill="x", anchor="w")
        self.canvas.bind("<Configure>", lambda e: self._draw_picture())
        text.bind("<Configure>", self._rewrap)
        self.show_empty()

    def _rewrap(self, event):
        for label in self._wrapped:
            label.configure(wraplength=max(200, event.width - 4))
        self._draw_bar()

    def set_hover(self, active: bool):
        self._hover = active
        color = HOVER_BORDER if active else IDLE_BORDER
        self.configure(highlightbackground=color, highlightcolor=color)
        if self.row is None:
            self._draw_invitation()

    def show_empty(self):
        self.row = None
        self.overlay_shown = False
        self._picture = None
        for label in (self.verdict, self.confidence, self.info, self.file, self.caption):
            label.configure(text="")
        self._draw_bar()
        self._draw_invitation()

    def _size(self) -> tuple[int, int]:
        w, h = self.canvas.winfo_width(), self.canvas.winfo_height()
        if w <= 1 or h <= 1:  # not laid out yet: the requested size
            w, h = int(self.canvas.cget("width")), int(self.canvas.cget("height"))
        return max(w, 50), max(h, 50)

    def _draw_invitation(self):
        c = self.canvas
        w, h = self._size()
        c.delete("all")
        c.create_rectangle(6, 6, w - 6, h - 6, outline=HOVER_BORDER if self._hover else "#9aa3af", dash=(8, 6),
                           width=2)
        c.create_text(w // 2, h // 2 - 22, font=self._fonts[1], fill="#3c4043",
                      text="Release to predict" if self._hover else "Drop photos or folders here")
        c.create_text(w // 2, h // 2 + 12, text="anywhere in this window", fill=MUTED)
        c.create_text(w // 2, h // 2 + 40, text="or press Open… (Ctrl+O)", fill=MUTED)

    def _draw_picture(self):
        if self._picture is None:
            if self.row is None:
                self._draw_invitation()
            return
        w, h = self._size()
        picture = render.scale_into(self._picture, w, h, limit=self._limit)
        self._photo = ImageTk.PhotoImage(picture, master=self.canvas)
        self.canvas.delete("all")
        self.canvas.create_image(w // 2, h // 2, image=self._photo)

    def _draw_bar(self):
        self.bar.delete("all")
        row = self.row
        if row is None or row.status != DONE:
            return
        width = max(self.bar.winfo_width(), 100) - 2
        color = render.RUST if row.is_rust else render.CLEAN
        self.bar.create_rectangle(1, 2, width, 14, fill="#e3e6ea", outline="#b0b7c3")
        filled = int(round(width * max(0.0, min(1.0, row.confidence or 0.0))))
        if filled > 1:
            self.bar.create_rectangle(1, 2, filled, 14, fill=color, outline="")

    def show(self, row: ResultRow, overlay: bool):
        """Show ``row``; ``overlay``: draw where the rust is (Grad-CAM heat or mask) if the row has it."""
        self.row = row
        picture = render.unpack(row.preview) if row.preview is not None else None
        caption = ""
        self.overlay_shown = False
        if row.status == DONE and picture is not None:
            if row.mask is not None:
                from rustlab.inference.grade import astm_d610, iso_4628_3

                caption = (f"Rust area {format_percent(row.rust_area)} of the image (segmentation mask): "
                           f"ASTM D610 grade {astm_d610(row.rust_area)}, ISO 4628-3 {iso_4628_3(row.rust_area)}.")
                if overlay:
                    picture = render.mask_overlay(picture, row.mask, row.mask_threshold)
                    self.overlay_shown = True
            elif row.heat is not None:
                caption = ("Grad-CAM: where the model sees rust; the colour fades as the rust probability "
                           f"falls (here {format_confidence(row.rust_probability)}).")
                if overlay:
                    picture = render.heat_overlay(picture, row.heat, row.rust_probability)
                    self.overlay_shown = True
            if not overlay and caption:
                caption = "Overlay off (View > Show where the rust is, Ctrl+G)."
        # a photo may grow to fill the panel; the warning tile keeps its size
        self._picture, self._limit = (picture, 3.0) if picture is not None else (render.placeholder(160), 1.0)
        self._draw_picture()

        if row.status == DONE:
            color = render.RUST if row.is_rust else render.CLEAN
            self.verdict.configure(text=format_label(row.label).upper(), foreground=color)
            self.confidence.configure(text=f"Confidence {format_confidence(row.confidence)}")
            w, h = row.image_size or ("?", "?")
            self.info.configure(text=f"{format_seconds(row.seconds)} · {w} × {h} px · model {row.model}")
        elif row.status == ERROR:
            self.verdict.configure(text=row.error_title.upper(), foreground="#b71c1c")
            self.confidence.configure(text=row.error)
            self.info.configure(text="")
        else:
            self.verdict.configure(text=row.status.upper() + "…", foreground=MUTED)
            self.confidence.configure(text="")
            self.info.configure(text="")
        self._draw_bar()
        self.file.configure(text=row.source)
        self.caption.configure(text=caption)
