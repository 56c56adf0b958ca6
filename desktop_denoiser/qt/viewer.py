"""Before/after image viewer: one widget paints both images with a shared transform, so zoom and pan stay in
sync. Split mode has a draggable divider; side-by-side mode shows the two images next to each other."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QColor, QCursor, QFont, QImage, QMouseEvent, QPainter, QPainterPath, QPaintEvent,
                           QPen, QWheelEvent)
from PySide6.QtWidgets import QSizePolicy, QWidget

MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0
ZOOM_STEP = 1.25
DIVIDER_GRAB = 8  # logical pixels either side of the divider that start a divider drag
GAP = 6  # logical pixels between the panes in side-by-side mode

BACKGROUND = QColor(38, 40, 44)
TEXT = QColor(220, 224, 230)


class CompareView(QWidget):
    """Shows an original ("before") and a denoised ("after") image.

    ``zoom`` is image pixels -> device pixels (1.0 = 100%, one image pixel per screen pixel, also on high-DPI
    screens). ``center`` is the image point shown at the centre of each pane."""

    zoom_changed = Signal(float)
    split_changed = Signal(float)
    view_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._before: QImage | None = None
        self._after: QImage | None = None
        self._before_label = "Original"
        self._after_label = "Denoised"
        self._zoom = 1.0
        self._center = QPointF(0, 0)
        self._auto_fit = True
        self._split = 0.5
        self._side_by_side = False
        self._drag: str | None = None
        self._drag_last = QPointF()
        self._cache: dict[tuple[int, int], QImage] = {}
        self._after_region: tuple[int, int, int, int] | None = None  # outlined on the after side
        self._peek = False  # Space held: the before image on the after side too, to flick between the two
        self.placeholder = "Open a photo (Ctrl+O) or drop it here\n(several photos or a folder: a batch)"
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(800, 560)

    # -- images ------------------------------------------------------------------------------------
    def set_images(self, before: QImage | None, after: QImage | None = None, *, keep_view: bool = False) -> None:
        old = self._before
        self._before, self._after = before, after
        self._after_region = None
        self._cache.clear()
        same_size = old is not None and before is not None and old.size() == before.size()
        if not (keep_view and same_size):
            self._auto_fit = True
            self._fit_now()
        self.update()

    def set_before(self, before: QImage) -> None:
        """Another "before" image of the same size (the view stays where it is)."""
        if self._before is not None and before.size() != self._before.size():
            raise ValueError("set_before needs an image of the shown image's size; use set_images")
        self._before = before
        self._cache = {k: v for k, v in self._cache.items() if k[0] != 0}
        self.update()

    def set_after(self, after: QImage | None) -> None:
        self._after = after
        self._cache = {k: v for k, v in self._cache.items() if k[0] == 0}
        self.update()

    def set_after_region(self, box: tuple[int, int, int, int] | None) -> None:
        """Outline ``box`` = (x0, y0, x1, y1) (image pixels) on the after side: the part a preview denoised.
        None: no outline."""
        self._after_region = tuple(box) if box is not None else None
        self.update()

    def after_region(self) -> tuple[int, int, int, int] | None:
        return self._after_region

    def set_labels(self, before: str, after: str) -> None:
        self._before_label, self._after_label = before, after
        self.update()

    def before(self) -> QImage | None:
        return self._before

    def after(self) -> QImage | None:
        return self._after

    def has_image(self) -> bool:
        return self._before is not None

    # -- view state --------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self._zoom

    def center(self) -> QPointF:
        return QPointF(self._center)

    def split(self) -> float:
        return self._split

    def is_side_by_side(self) -> bool:
        return self._side_by_side

    def set_side_by_side(self, on: bool) -> None:
        if on == self._side_by_side:
            return
        self._side_by_side = bool(on)
        if self._auto_fit:
            self._fit_now()
        self.update()
        self.view_changed.emit()

    def set_split(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if fraction != self._split:
            self._split = fraction
            self.update()
            self.split_changed.emit(fraction)

    def _dpr(self) -> float:
        return max(1.0, float(self.devicePixelRatioF()))

    def _scale(self) -> float:
        """Logical pixels per image pixel."""
        return self._zoom / self._dpr()

    def panes(self) -> list[QRectF]:
        r = QRectF(self.rect())
        if not self._side_by_side:
            return [r]
        w = (r.width() - GAP) / 2
        return [QRectF(r.left(), r.top(), w, r.height()), QRectF(r.left() + w + GAP, r.top(), w, r.height())]

    def fit_zoom(self) -> float:
        if self._before is None:
            return 1.0
        pane = self.panes()[0]
        iw, ih = self._before.width(), self._before.height()
        s = min((pane.width() - 16) / iw, (pane.height() - 16) / ih)
        return max(MIN_ZOOM, min(MAX_ZOOM, s * self._dpr()))

    def _fit_now(self) -> None:
        if self._before is None:
            return
        self._center = QPointF(self._before.width() / 2, self._before.height() / 2)
        self._set_zoom_value(self.fit_zoom())

    def fit(self) -> None:
        self._auto_fit = True
        self._fit_now()
        self.update()
        self.view_changed.emit()

    def zoom_100(self) -> None:
        self.set_zoom(1.0)

    def zoom_in(self) -> None:
        self.set_zoom(self._zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self._zoom / ZOOM_STEP)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under ``anchor`` (widget coordinates; default the centre) still."""
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, float(zoom)))
        if self._before is None:
            self._set_zoom_value(zoom)
            return
        pane = self._pane_at(anchor) if anchor is not None else self.panes()[0]
        anchor = anchor if anchor is not None else pane.center()
        img_pt = self.map_to_image(anchor, pane)
        self._auto_fit = False
        self._set_zoom_value(zoom)
        s = self._scale()
        self._center = img_pt - (anchor - pane.center()) / s
        self._clamp_center()
        self.update()
        self.view_changed.emit()

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) logical pixels."""
        if self._before is None:
            return
        self._auto_fit = False
        s = self._scale()
        self._center -= QPointF(dx / s, dy / s)
        self._clamp_center()
        self.update()
        self.view_changed.emit()

    def _set_zoom_value(self, zoom: float) -> None:
        if not math.isclose(zoom, self._zoom):
            self._zoom = zoom
            self.zoom_changed.emit(zoom)
        else:
            self._zoom = zoom

    def _clamp_center(self) -> None:
        if self._before is None:
            return
        w, h = self._before.width(), self._before.height()
        self._center = QPointF(min(max(self._center.x(), 0.0), w), min(max(self._center.y(), 0.0), h))

    def visible_rect(self) -> tuple[float, float, float, float] | None:
        """The part of the image in view, (x0, y0, x1, y1) in image pixels, clipped to the image (both panes
        show the same part); None without an image."""
        if self._before is None:
            return None
        pane = self.panes()[0]
        tl, br = self.map_to_image(pane.topLeft(), pane), self.map_to_image(pane.bottomRight(), pane)
        w, h = self._before.width(), self._before.height()
        return (max(0.0, tl.x()), max(0.0, tl.y()), min(float(w), br.x()), min(float(h), br.y()))

    def map_to_image(self, p: QPointF, pane: QRectF | None = None) -> QPointF:
        pane = pane or self._pane_at(p)
        return self._center + (p - pane.center()) / self._scale()

    def map_from_image(self, p: QPointF, pane: QRectF | None = None) -> QPointF:
        pane = pane or self.panes()[0]
        return pane.center() + (p - self._center) * self._scale()

    def _pane_at(self, p: QPointF) -> QRectF:
        panes = self.panes()
        if len(panes) == 2 and p.x() >= panes[1].left():
            return panes[1]
        return panes[0]

    def divider_x(self) -> float:
        r = self.rect()
        return r.left() + self._split * r.width()

    def _on_divider(self, p: QPointF) -> bool:
        return (not self._side_by_side and self._after is not None
                and abs(p.x() - self.divider_x()) <= DIVIDER_GRAB)

    # -- events ------------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802
        if self._auto_fit:
            self._fit_now()
        super().resizeEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        if self._before is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self._zoom * ZOOM_STEP ** steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton) and self._before is not None:
            p = event.position()
            self._drag = "split" if event.button() == Qt.MouseButton.LeftButton and self._on_divider(p) else "pan"
            self._drag_last = p
            self.setCursor(Qt.CursorShape.SplitHCursor if self._drag == "split" else Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        p = event.position()
        if self._drag == "split":
            self.set_split((p.x() - self.rect().left()) / max(1, self.rect().width()))
        elif self._drag == "pan":
            d = p - self._drag_last
            self._drag_last = p
            self.pan_by(d.x(), d.y())
        else:
            self.setCursor(Qt.CursorShape.SplitHCursor if self._on_divider(p) else
                           (Qt.CursorShape.OpenHandCursor if self._before is not None else Qt.CursorShape.ArrowCursor))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._drag = None
        self.setCursor(QCursor(Qt.CursorShape.OpenHandCursor if self._before is not None else Qt.CursorShape.ArrowCursor))
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._before is None:
            return
        if math.isclose(self._zoom, 1.0):
            self.fit()
        else:
            self.set_zoom(1.0, event.position())

    def is_peeking(self) -> bool:
        """Whether Space is held: the after side shows the before image (flick between the two in place)."""
        return self._peek

    def set_peeking(self, on: bool) -> None:
        if bool(on) != self._peek:
            self._peek = bool(on)
            self.update()

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.set_peeking(False)
        else:
            super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802
        self.set_peeking(False)  # the release may go to another window
        super().focusOutEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        step = 40
        key = event.key()
        moves = {Qt.Key.Key_Left: (step, 0), Qt.Key.Key_Right: (-step, 0),
                 Qt.Key.Key_Up: (0, step), Qt.Key.Key_Down: (0, -step)}
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.set_peeking(self._after is not None)
        elif key in moves:
            self.pan_by(*moves[key])
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key == Qt.Key.Key_Minus:
            self.zoom_out()
        else:
            super().keyPressEvent(event)

    # -- painting ----------------------------------------------------------------------------------
    def _level_image(self, which: int, img: QImage) -> QImage:
        """A pre-shrunk copy when zoomed far out (smooth scaling of a huge image on every paint is slow)."""
        if self._zoom >= 0.5:
            return img
        level = min(6, int(math.floor(-math.log2(self._zoom))))  # 1/2**level >= zoom
        key = (which, level)
        if key not in self._cache:
            f = 2 ** level
            self._cache[key] = img.scaled(max(1, img.width() // f), max(1, img.height() // f),
                                          Qt.AspectRatioMode.IgnoreAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation)
        return self._cache[key]

    def _draw_image(self, painter: QPainter, which: int, img: QImage, pane: QRectF, clip: QRectF) -> None:
        s = self._scale()
        iw, ih = img.width(), img.height()
        # the part of the image that is visible inside ``clip``
        tl = self._center + (clip.topLeft() - pane.center()) / s
        br = self._center + (clip.bottomRight() - pane.center()) / s
        x0, y0 = max(0, math.floor(tl.x())), max(0, math.floor(tl.y()))
        x1, y1 = min(iw, math.ceil(br.x())), min(ih, math.ceil(br.y()))
        if x1 <= x0 or y1 <= y0:
            return
        src = self._level_image(which, img)
        f = src.width() / iw
        target = QRectF(self.map_from_image(QPointF(x0, y0), pane), self.map_from_image(QPointF(x1, y1), pane))
        source = QRectF(x0 * f, y0 * f, (x1 - x0) * f, (y1 - y0) * f)
        painter.save()
        painter.setClipRect(clip)
        # smooth when shrinking or fitted; crisp pixels when the user zooms in to inspect them
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._zoom < 2.0 or self._auto_fit)
        painter.drawImage(target, src, source)
        painter.restore()

    def _draw_region(self, painter: QPainter, pane: QRectF, clip: QRectF) -> None:
        """The after side's outline of the previewed part (set_after_region), clipped to ``clip``."""
        if self._after_region is None or clip.width() <= 0:
            return
        x0, y0, x1, y1 = self._after_region
        r = QRectF(self.map_from_image(QPointF(x0, y0), pane), self.map_from_image(QPointF(x1, y1), pane))
        painter.save()
        painter.setClipRect(clip)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for color, style in ((QColor(0, 0, 0, 160), Qt.PenStyle.SolidLine), (QColor(255, 210, 60), Qt.PenStyle.DashLine)):
            pen = QPen(color, 1.5)
            pen.setStyle(style)
            painter.setPen(pen)
            painter.drawRect(r)
        painter.restore()

    def _draw_label(self, painter: QPainter, text: str, anchor: QPointF, align_right: bool) -> None:
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        fm = painter.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 16, fm.height() + 8
        x = anchor.x() - w if align_right else anchor.x()
        box = QRectF(x, anchor.y(), w, h)
        path = QPainterPath()
        path.addRoundedRect(box, 6, 6)
        painter.fillPath(path, QColor(0, 0, 0, 150))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self._before is None:
            painter.setPen(TEXT)
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.3)
            painter.setFont(font)
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        panes = self.panes()
        # Space held: the before image (cached level 0) and its label on the after side, no outline
        peek = self._peek and self._after is not None
        after_which, after_img = (0, self._before) if peek else (1, self._after)
        after_label = self._before_label if peek else self._after_label
        if self._side_by_side:
            left, right = panes
            self._draw_image(painter, 0, self._before, left, left)
            if after_img is not None:
                self._draw_image(painter, after_which, after_img, right, right)
                if not peek:
                    self._draw_region(painter, right, right)
            else:
                painter.setPen(TEXT)
                painter.drawText(right, Qt.AlignmentFlag.AlignCenter, "Run the denoiser to see the result here")
            self._draw_label(painter, self._before_label, left.topLeft() + QPointF(10, 10), False)
            if after_img is not None:
                self._draw_label(painter, after_label, right.topLeft() + QPointF(10, 10), False)
            return
        pane = panes[0]
        if after_img is None:
            self._draw_image(painter, 0, self._before, pane, pane)
            self._draw_label(painter, self._before_label, pane.topLeft() + QPointF(10, 10), False)
            return
        dx = self.divider_x()
        left = QRectF(pane.left(), pane.top(), dx - pane.left(), pane.height())
        right = QRectF(dx, pane.top(), pane.right() - dx, pane.height())
        self._draw_image(painter, 0, self._before, pane, left)
        self._draw_image(painter, after_which, after_img, pane, right)
        if not peek:
            self._draw_region(painter, pane, right)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 2))
        painter.drawLine(QPointF(dx, pane.top()), QPointF(dx, pane.bottom()))
        handle = QPointF(dx, pane.center().y())
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.setPen(QPen(QColor(40, 40, 40, 200), 1.5))
        painter.drawEllipse(handle, 13, 13)
        painter.setBrush(QColor(60, 60, 60))
        painter.setPen(Qt.PenStyle.NoPen)
        for sign in (-1, 1):
            tri = QPainterPath()
            tip = handle + QPointF(sign * 9, 0)
            tri.moveTo(tip)
            tri.lineTo(handle + QPointF(sign * 3, -5))
            tri.lineTo(handle + QPointF(sign * 3, 5))
            tri.closeSubpath()
            painter.drawPath(tri)
        if left.width() > 60:
            self._draw_label(painter, self._before_label, pane.topLeft() + QPointF(10, 10), False)
        if right.width() > 60:
            self._draw_label(painter, after_label, pane.topRight() + QPointF(-10, 10), True)
