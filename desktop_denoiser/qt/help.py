"""Help ▸ About and Help ▸ Keyboard and mouse (a mixin of the main window, which owns the actions)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox


class HelpMixin:
    """The main window's help pages; ``quiet`` windows (tests) build the texts but show no box."""

    def show_about(self) -> None:
        from .. import __version__

        text = (f"<h3>Desktop Denoiser {__version__}</h3>"
                "<p>Removes noise from photos with a Denoising Diffusion Probabilistic Model (DDPM): the noise "
                "level σ of the photo is estimated, matched to the diffusion timestep t*, and the reverse "
                "process runs from there.</p>"
                "<p><b>Fidelity</b> mode predicts the clean photo in one step (three at heavy noise); "
                "<b>Detail</b> mode runs the full reverse chain for finer texture.</p>")
        if self.quiet:
            return
        QMessageBox.about(self, "About Desktop Denoiser", text)

    def shortcuts_text(self) -> str:
        """The Help ▸ Keyboard and mouse page (HTML): every menu action's shortcuts, then the viewer's keys
        and mouse."""
        fmt = QKeySequence.SequenceFormat.NativeText
        rows = []
        for act in (self.open_action, self.save_action, self.save_as_action, self.run_action, self.preview_action,
                    self.cancel_action, self.batch_action, self.fit_action, self.zoom100_action, self.zoom_in_action,
                    self.zoom_out_action, self.split_action, self.side_action, self.compare_previous_action,
                    self.shortcuts_action,
                    self.quit_action):
            keys = " or ".join(k.toString(fmt) for k in act.shortcuts() if not k.isEmpty())
            if keys:
                rows.append((act.text().replace("&", "").rstrip("…"), keys))
        rows += [("Move around the photo", "arrow keys, or drag with the mouse"),
                 ("Zoom at the pointer", "mouse wheel"),
                 ("100 % at the pointer / fit", "double-click"),
                 ("Move the before/after divider", "drag the round handle"),
                 ("The original in place of the result (flick between them)", "hold Space on the photo")]
        body = "".join(f"<tr><td>{what}</td><td>&nbsp;&nbsp;<b>{keys}</b></td></tr>" for what, keys in rows)
        return f"<table>{body}</table>"

    def show_shortcuts(self) -> None:
        if self.quiet:
            return
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard and mouse", self.shortcuts_text(),
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()
