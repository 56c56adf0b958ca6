"""The main window's widgets: the side panel (noise panel, run buttons, progress, live previews), the
actions with their shortcuts, the menus, the toolbar and the status bar. What they do is in
:mod:`.main_window` (and its other mixins); this is where a new menu item, button or shortcut goes."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QScrollArea, QToolBar, QVBoxLayout, QWidget)

from .icons import icon
from .noise_panel import NoisePanel

PREVIEW_SIZE = 132  # the live previews' side (pixels)


class WindowLayoutMixin:
    """Builds the main window's widgets and actions (called once from ``MainWindow.__init__``)."""
    def _build_side_panel(self) -> None:
        self.noise_panel = NoisePanel()

        self.run_button = QPushButton(icon("run"), "  Denoise")
        self.run_button.setObjectName("runButton")
        self.run_button.setIconSize(QSize(20, 20))
        self.run_button.setMinimumHeight(34)
        self.run_button.setToolTip("Denoise the photo (Ctrl+R)")
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.setIconSize(QSize(18, 18))
        self.cancel_button.setMinimumHeight(34)
        self.cancel_button.setToolTip("Stop within a moment: after the current step or tile (Esc)")
        self.preview_button = QPushButton(icon("preview"), "Preview")
        self.preview_button.setIconSize(QSize(18, 18))
        self.preview_button.setMinimumHeight(34)
        self.preview_button.setToolTip("Denoise only the part of the photo in view, in a second or two: zoom in "
                                       "on what matters and check the settings (Ctrl+Shift+R)")
        for button in (self.run_button, self.preview_button, self.cancel_button):
            # a click leaves the keyboard focus where it was (the photo): Space there shows the original,
            # and must not press the button clicked last (a new run); Tab still reaches them
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button, 3)
        run_row.addWidget(self.preview_button, 2)
        run_row.addWidget(self.cancel_button, 2)

        self.progress_bar = QProgressBar()
        self._set_progress(0, 1)
        self.progress_bar.setTextVisible(True)
        self.progress_label = QLabel("Ready.")
        self.progress_label.setWordWrap(True)
        self.progress_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.progress_label.setMinimumHeight(2 * self.progress_label.fontMetrics().lineSpacing() + 4)

        previews = QGroupBox("Live preview")
        grid = QGridLayout(previews)
        self.xt_preview = self._preview_label("current xₜ")
        self.x0_preview = self._preview_label("predicted x₀")
        grid.addWidget(self.xt_preview, 0, 0)
        grid.addWidget(self.x0_preview, 0, 1)
        cap1, cap2 = QLabel("Current xₜ"), QLabel("Predicted x₀")
        for c in (cap1, cap2):
            c.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(cap1, 1, 0)
        grid.addWidget(cap2, 1, 1)

        panel = QWidget()
        lay = QVBoxLayout(panel)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(self.noise_panel)
        lay.addSpacing(4)
        lay.addLayout(run_row)
        lay.addWidget(self.progress_bar)
        lay.addWidget(self.progress_label)
        lay.addWidget(previews)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        panel.setMinimumWidth(2 * PREVIEW_SIZE + 48)
        # room for the vertical scroll bar, so a short window never cuts the panel off on the right
        scroll.setMinimumWidth(max(panel.minimumSizeHint().width(), panel.minimumWidth())
                               + scroll.verticalScrollBar().sizeHint().width() + 4)

        self.dock = QDockWidget("Denoise", self)
        self.dock.setObjectName("denoiseDock")
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                              | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.dock.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

        self.run_button.clicked.connect(self.run_denoise)
        self.preview_button.clicked.connect(self.preview_visible_area)
        self.cancel_button.clicked.connect(self.cancel_run)

    @staticmethod
    def _preview_label(what: str) -> QLabel:
        label = QLabel("–")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        label.setToolTip(f"Live preview of the {what} during a run")
        label.setStyleSheet("QLabel { background: #26282c; color: #8a8f98; border-radius: 4px; }")
        return label

    def _action(self, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str | None = None,
                checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if icon_name:
            act.setIcon(icon(icon_name))
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                act.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(f"{tip} ({act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                           if shortcut is not None else tip)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        return act

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.open_action = self._action("&Open…", self.open_dialog, K.Open, "open",
                                        "Open a photo (pick several for a batch)")
        self.sample_action = self._action("Open &sample photo", self.open_sample, None, None,
                                          "Open the bundled noisy sample photo")
        self.save_action = self._action("&Save", self.save, K.Save, "save",
                                        "Save the result next to the original as <name>_denoised")
        self.save_as_action = self._action("Save &As…", self.save_as, "Ctrl+Shift+S", None,
                                           "Save the result under a new name or format")
        self.batch_action = self._action("&Batch…", lambda: self.open_batch(), "Ctrl+B", "batch",
                                         "Denoise a folder, or several photos, into an output folder")
        self.quit_action = self._action("&Quit", self.close, K.Quit, None, "Quit Desktop Denoiser")
        self.run_action = self._action("&Denoise", self.run_denoise, ["Ctrl+R", "F5"], "run", "Denoise the photo")
        self.preview_action = self._action("&Preview the area in view", self.preview_visible_area,
                                           ["Ctrl+Shift+R", "Shift+F5"], "preview",
                                           "Denoise only the part of the photo in view: a quick check of the "
                                           "settings before the whole photo")
        self.cancel_action = self._action("&Cancel", self.cancel_run, "Esc", "cancel", "Stop the running denoise")
        self.reset_options_action = self._action("&Reset the options", lambda: self.noise_panel.reset_options(),
                                                 None, None, "Mode, quality, strength, σ and the rest back to "
                                                 "their defaults")
        self.fit_action = self._action("&Fit to window", self.viewer.fit, "Ctrl+0", "fit", "Fit the photo")
        self.zoom100_action = self._action("&Actual size (100%)", self.viewer.zoom_100, "Ctrl+1", "zoom-100",
                                           "One photo pixel per screen pixel")
        self.zoom_in_action = self._action("Zoom &in", self.viewer.zoom_in, K.ZoomIn, None, "Zoom in")
        self.zoom_out_action = self._action("Zoom &out", self.viewer.zoom_out, K.ZoomOut, None, "Zoom out")
        self.split_action = self._action("&Split view", lambda: self.set_side_by_side(False), "Ctrl+2", "split",
                                         "Before/after with a draggable divider", checkable=True)
        self.side_action = self._action("Side &by side", lambda: self.set_side_by_side(True), "Ctrl+3",
                                        "side-by-side", "Before and after next to each other", checkable=True)
        group = QActionGroup(self)
        group.setExclusive(True)
        group.addAction(self.split_action)
        group.addAction(self.side_action)
        self.split_action.setChecked(True)
        self.compare_previous_action = self._action(
            "Compare with the &previous run", self._show_before, "Ctrl+4", None,
            "Show the previous run's result instead of the original on the before side (to compare settings)",
            checkable=True)
        self.about_action = self._action("&About Desktop Denoiser", self.show_about, None, None, "About")
        self.shortcuts_action = self._action("&Keyboard and mouse", self.show_shortcuts, K.HelpContents, None,
                                             "The keyboard shortcuts and what the mouse does in the viewer")

    @staticmethod
    def _add_actions(to, actions) -> None:
        """Add ``actions`` to a menu or toolbar in order, a separator for each None."""
        for a in actions:
            to.addSeparator() if a is None else to.addAction(a)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        self._add_actions(file_menu, (self.sample_action, None, self.save_action, self.save_as_action, None,
                                      self.batch_action, None, self.quit_action))
        self._add_actions(mb.addMenu("&View"), (
            self.fit_action, self.zoom100_action, self.zoom_in_action, self.zoom_out_action, None,
            self.split_action, self.side_action, self.compare_previous_action, None, self.dock.toggleViewAction()))
        self._add_actions(mb.addMenu("&Denoise"), (self.run_action, self.preview_action, self.cancel_action, None,
                                                   self.reset_options_action, None, self.batch_action))
        self._add_actions(mb.addMenu("&Help"), (self.sample_action, self.shortcuts_action, self.about_action))

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main toolbar")
        tb.setObjectName("mainToolbar")
        tb.setIconSize(QSize(22, 22))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.setMovable(False)
        self._add_actions(tb, (self.open_action, self.save_action, None, self.run_action, self.preview_action,
                               self.cancel_action, None, self.batch_action, None, self.fit_action,
                               self.zoom100_action, self.split_action, self.side_action))
        # shorter labels on the toolbar
        for a, text in ((self.fit_action, "Fit"), (self.zoom100_action, "100%"), (self.split_action, "Split"),
                        (self.side_action, "Side by side"), (self.run_action, "Denoise"),
                        (self.preview_action, "Preview area"),
                        (self.batch_action, "Batch"), (self.open_action, "Open"), (self.save_action, "Save"),
                        (self.cancel_action, "Cancel")):
            a.setIconText(text)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.info_label = QLabel("")
        self.zoom_label = QLabel("")
        self.zoom_label.setMinimumWidth(60)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        sb.addPermanentWidget(self.info_label)
        sb.addPermanentWidget(self.zoom_label)
        sb.showMessage("Open a photo to start: File ▸ Open (Ctrl+O), drag and drop, or Help ▸ Open sample photo.")
