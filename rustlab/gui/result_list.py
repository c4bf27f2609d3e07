"""The session list: one drawn row per file (thumbnail, name, verdict, confidence number and
bar, time), on a Canvas so each row can carry its own coloured bar, which a Treeview cannot.

Every canvas item of a row is tagged ``row<id>`` plus its role (``name``, ``detail``, ``label``,
``conf``, ``bar``, ``time``), so the window and the tests can read what a row shows.
"""

from __future__ import annotations

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from PIL import ImageTk

from rustlab.gui import render
from rustlab.gui.results import (CANCELLED, DONE, ERROR, QUEUED, ResultRow, format_confidence, format_label,
                                 format_percent, format_seconds)

ROW_H = 66
BAR_W = 110
SELECTED = "#d6e6f8"
STRIPE = "#f6f7f9"
MUTED = "#6b6b6b"
ERROR_TEXT = "#b71c1c"


class ResultList(ttk.Frame):
    def __init__(self, master, on_select=None):
        super().__init__(master)
        self.on_select = on_select
        self.order: list[int] = []
        self._pos: dict[int, int] = {}  # row id -> index in order
        self.rows: dict[int, ResultRow] = {}
        self.selected: int | None = None
        self._photos: dict[int, ImageTk.PhotoImage] = {}
        base = tkfont.nametofont("TkDefaultFont")
        self.font = base.copy()
        self.bold = base.copy()
        self.bold.configure(weight="bold")
        self.small = base.copy()
        self.small.configure(size=max(8, int(base.cget("size")) - 1))
        self.verdict = base.copy()
        self.verdict.configure(weight="bold", size=int(base.cget("size")) + 2)

        self.header = tk.Canvas(self, height=24, highlightthickness=0, background="#e9ecef")
        self.canvas = tk.Canvas(self, highlightthickness=0, background="white", takefocus=True)
        scroll = ttk.Scrollbar(self, orient="vertical", command=self.canvas.yview)
        self.canvas.configure(yscrollcommand=scroll.set)
        self.header.grid(row=0, column=0, columnspan=2, sticky="ew")
        self.canvas.grid(row=1, column=0, sticky="nsew")
        scroll.grid(row=1, column=1, sticky="ns")
        self.rowconfigure(1, weight=1)
        self.columnconfigure(0, weight=1)
        self._empty_text()

        self.canvas.bind("<Configure>", lambda e: self.redraw())
        self.canvas.bind("<Button-1>", self._click)
        self.canvas.bind("<Up>", lambda e: self._step(-1))
        self.canvas.bind("<Down>", lambda e: self._step(1))
        # wheel: Windows/macOS send <MouseWheel>, X11 sends buttons 4/5
        self.canvas.bind("<MouseWheel>", lambda e: self.canvas.yview_scroll(-1 if e.delta > 0 else 1, "units"))
        self.canvas.bind("<Button-4>", lambda e: self.canvas.yview_scroll(-1, "units"))
        self.canvas.bind("<Button-5>", lambda e: self.canvas.yview_scroll(1, "units"))
        self.canvas.configure(yscrollincrement=ROW_H // 2)

    # --- geometry: x positions from the right edge, shared by the header and the rows ---------
    def _columns(self, width: int) -> dict:
        width = max(width, 560)
        time_x = width - 12  # right-aligned
        bar_x = width - 80 - BAR_W
        conf_x = bar_x - 10  # right-aligned, just left of the bar
        label_x = conf_x - 170
        return {"thumb": 8, "name": 8 + render.THUMB + 12, "label": label_x, "conf": conf_x,
                "bar": bar_x, "time": time_x, "name_width": label_x - (8 + render.THUMB + 12) - 12}

    def _draw_header(self, width: int):
        c = self._columns(width)
        h = self.header
        h.delete("all")
        for x, text, anchor in ((c["name"], "File", "w"), (c["label"], "Result", "w"),
                                (c["conf"], "Confidence", "e"), (c["bar"], "", "w"), (c["time"], "Time", "e")):
            h.create_text(x, 12, text=text, anchor=anchor, font=self.bold, fill="#333333")

    def _empty_text(self):
        self.canvas.delete("empty")
        if not self.order:
            self.canvas.create_text(20, 24, anchor="w", fill=MUTED, font=self.font, tags=("empty",),
                                    text="Results of this session appear here.")

    # --- rows ----------------------------------------------------------------------------------
    def add(self, row: ResultRow):
        self._pos[row.id] = len(self.order)
        self.order.append(row.id)
        self.rows[row.id] = row
        self.canvas.delete("empty")
        self._draw_row(row.id)
        self._update_scrollregion()

    def update_row(self, row: ResultRow):
        if row.id not in self.rows:
            return
        self.rows[row.id] = row
        self._photos.pop(row.id, None)
        self._draw_row(row.id)

    def clear(self):
        self.order.clear()
        self._pos.clear()
        self.rows.clear()
        self._photos.clear()
        self.selected = None
        self.canvas.delete("all")
        self._empty_text()
        self._update_scrollregion()

    def redraw(self):
        self._draw_header(self.canvas.winfo_width())
        self.canvas.delete("row")
        for row_id in self.order:
            self._draw_row(row_id)
        self._update_scrollregion()

    def _update_scrollregion(self):
        self.canvas.configure(scrollregion=(0, 0, self.canvas.winfo_width(), max(1, len(self.order) * ROW_H)))

    def _thumb(self, row: ResultRow):
        if row.id not in self._photos and row.thumbnail is not None:
            self._photos[row.id] = ImageTk.PhotoImage(row.thumbnail, master=self.canvas)
        return self._photos.get(row.id)

    def _draw_row(self, row_id: int):
        row = self.rows[row_id]
        index = self._pos[row_id]
        tag = f"row{row_id}"
        cv = self.canvas
        cv.delete(tag)
        width = cv.winfo_width()
        c = self._columns(width)
        top, mid = index * ROW_H, index * ROW_H + ROW_H // 2
        t = lambda role: ("row", tag, role)  # noqa: E731

        fill = SELECTED if row_id == self.selected else (STRIPE if index % 2 else "white")
        cv.create_rectangle(0, top, max(width, 560), top + ROW_H, fill=fill, width=0, tags=t("bg"))
        photo = self._thumb(row)
        if photo is not None:
            cv.create_image(c["thumb"] + render.THUMB // 2, mid, image=photo, tags=t("thumb"))
        else:
            cv.create_rectangle(c["thumb"], mid - render.THUMB // 2, c["thumb"] + render.THUMB,
                                mid + render.THUMB // 2, outline="#cccccc", dash=(3, 3), tags=t("thumb"))

        cv.create_text(c["name"], mid - 10, anchor="w", text=_clip(row.name, self.bold, c["name_width"]),
                       font=self.bold, tags=t("name"))
        if row.status == ERROR:
            detail, color = row.error, ERROR_TEXT
        else:
            detail, color = _folder(row.source), MUTED
        cv.create_text(c["name"], mid + 11, anchor="w", text=_clip(detail, self.small, c["name_width"]),
                       font=self.small, fill=color, tags=t("detail"))

        if row.status == DONE:
            color = render.RUST if row.is_rust else render.CLEAN
            cv.create_text(c["label"], mid - (8 if row.rust_area is not None else 0), anchor="w",
                           text=format_label(row.label), font=self.verdict, fill=color, tags=t("label"))
            if row.rust_area is not None:
                cv.create_text(c["label"], mid + 12, anchor="w", text=f"area {format_percent(row.rust_area)}",
                               font=self.small, fill=MUTED, tags=t("area"))
            cv.create_text(c["conf"], mid, anchor="e", text=format_confidence(row.confidence), font=self.bold,
                           tags=t("conf"))
            x0, filled = c["bar"], int(round(BAR_W * max(0.0, min(1.0, row.confidence or 0.0))))
            cv.create_rectangle(x0, mid - 6, x0 + BAR_W, mid + 6, fill="#e6e6e6", outline="#bdbdbd",
                                tags=t("bar"))
            if filled:
                cv.create_rectangle(x0, mid - 6, x0 + filled, mid + 6, fill=color, outline="", tags=t("bar"))
            cv.create_text(c["time"], mid, anchor="e", text=format_seconds(row.seconds), fill=MUTED,
                           font=self.font, tags=t("time"))
        else:
            text = {QUEUED: "queued…", CANCELLED: "cancelled", ERROR: row.error_title}.get(row.status, row.status)
            cv.create_text(c["label"], mid, anchor="w", text=text, font=self.bold,
                           fill=ERROR_TEXT if row.status == ERROR else MUTED, tags=t("label"))

    # --- selection -----------------------------------------------------------------------------
    def select(self, row_id: int | None, notify: bool = True, see: bool = True):
        previous, self.selected = self.selected, row_id
        for rid in (previous, row_id):
            if rid is not None and rid in self.rows:
                self._draw_row(rid)
        if see and row_id in self.rows:
            self.see(row_id)
        if notify and self.on_select and row_id is not None:
            self.on_select(row_id)

    def see(self, row_id: int):
        total = max(1, len(self.order) * ROW_H)
        top = self._pos[row_id] * ROW_H
        first, last = self.canvas.yview()
        if top < first * total or top + ROW_H > last * total:
            self.canvas.yview_moveto(max(0.0, (top - ROW_H) / total))

    def _click(self, event):
        self.canvas.focus_set()
        index = int(self.canvas.canvasy(event.y) // ROW_H)
        if 0 <= index < len(self.order):
            self.select(self.order[index])

    def _step(self, delta: int):
        if not self.order:
            return
        index = self._pos[self.selected] + delta if self.selected in self.rows else 0
        self.select(self.order[max(0, min(len(self.order) - 1, index))])

    # --- what a row shows (for the window's own checks and for tests) ---------------------------
    def shown(self, row_id: int) -> dict:
        out = {}
        for role in ("name", "detail", "label", "conf", "time", "area"):
            items = self.canvas.find_withtag(f"row{row_id}&&{role}")
            if items:
                out[role] = self.canvas.itemcget(items[0], "text")
        bars = self.canvas.find_withtag(f"row{row_id}&&bar")
        if len(bars) == 2:
            (x0, _, x1, _), (f0, _, f1, _) = (self.canvas.coords(b) for b in bars)
            out["bar"] = (f1 - f0) / (x1 - x0)
        elif bars:
            out["bar"] = 0.0
        return out


def _folder(path: str) -> str:
    from pathlib import Path

    parent = str(Path(path).parent)
    return "" if parent == "." else parent


def _clip(text: str, font, width: int) -> str:
    """Shorten with an ellipsis in the middle, so both the start and the end of a name stay."""
    if width <= 0 or font.measure(text) <= width:
        return text
    keep = len(text)
    while keep > 4 and font.measure(text[: keep // 2] + "…" + text[len(text) - keep // 2:]) > width:
        keep -= 2
    return text[: keep // 2] + "…" + text[len(text) - keep // 2:]
