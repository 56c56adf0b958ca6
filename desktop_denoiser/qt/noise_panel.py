"""The noise and options panel: noise type, estimated sigma and t*, manual override, mode, quality, strength, steps, seed,
device, network."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from ..pipeline.devices import auto_network_label, available_devices
from ..pipeline.jobs import DenoiseOptions, NoiseEstimate

MAX_STEPS = 1000  # the Steps box's top (0 = the mode's own)
MAX_SEED = 2**31 - 1  # the Seed box's top (a Qt spin box holds a 32-bit int)

SIGMA_MAX = 100.0
_SLIDER_SCALE = 10  # slider ticks per sigma unit

MODES = [
    ("fidelity", "Fidelity (best PSNR)",
     "Predicts the clean image directly at the noise level t* (1 network evaluation by default, 3 at heavy "
     "noise). "
     "Most faithful to the photo."),
    ("detail", "Detail (DDPM chain)",
     "Runs the reverse diffusion chain from t* down to 0 (one step per timestep). "
     "Re-creates finer texture, slightly less faithful, slower."),
]

QUALITIES = [
    (1, "Normal", "One pass of the network."),
    (2, "Better (2× time)", "Averages the network over the photo and its mirror image "
                             "(about +0.1 dB on photos with white noise), 2 times slower."),
    (8, "Best (8× time)",
     "Averages the network over the photo's 8 flips and rotations: the cleanest result "
     "(about +0.2 dB on photos with white noise; little on camera noise), 8 times slower."),
    (32, "Maximum (32× time)",
     "Best's 8 flips and rotations, each also at 4 offsets of the pixel grid: +0.01 to +0.03 dB more "
     "than Best on photos with white noise (rarely visible), 4 times Best's time. For a photo that "
     "matters, or on a GPU."),
]



def quality_name(ensemble: int) -> str:
    """The Quality control's word for an ensemble size ("Best" for 8), or "N views" for other sizes."""
    return next((label.split(" (")[0] for n, label, _ in QUALITIES if n == ensemble), f"{ensemble} views")


NETWORKS = [
    ("auto", "Auto",
     "The camera network for camera noise; for white noise the fast network on processors without native "
     "bf16 arithmetic (many laptop CPUs), where the standard one is about 2.2 times slower, and the "
     "standard network everywhere else."),
    ("standard", "Standard (6.0 M parameters)", "The most accurate network on white noise."),
    ("fast", "Fast (2.8 M parameters)",
     "A smaller network: about 2.2 times faster on a CPU without bf16, about 0.27 dB lower on white noise (CBSD68)."),
    ("camera", "Camera (2.8 M parameters)",
     "The fast network trained further on simulated camera noise (demosaicing, colour processing, JPEG): "
     "the best on real photos' noise, worse than the others on white noise."),
]

NOISE_TYPES = [
    ("auto", "Auto (detect)",
     "Detects whether the photo has camera noise (grainy, blotchy, correlated between neighbouring pixels: "
     "real photos) or white Gaussian noise, and picks the matching method."),
    ("real", "Camera noise",
     "Real camera noise: pixel-shuffled passes that break its correlation, then a light full-resolution pass. "
     "Use it when Auto leaves a noisy photo grainy."),
    ("gaussian", "Gaussian (white)",
     "White Gaussian noise of level σ: one prediction of the clean image at t*."),
]


def _choice_combo(choices, object_name: str = "") -> QComboBox:
    """A combo box of (data, label, tip) choices: each item carries its tip, the box lists them all."""
    combo = QComboBox()
    if object_name:
        combo.setObjectName(object_name)
    for data, label, tip in choices:
        combo.addItem(label, data)
        combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
    combo.setToolTip("\n\n".join(f"{label}: {tip}" for _, label, tip in choices))
    return combo


def _percent_spin(object_name: str, tip: str) -> QSpinBox:
    """A 0-100 % control in steps of 5, at 100 %."""
    spin = QSpinBox()
    spin.setObjectName(object_name)
    spin.setRange(0, 100)
    spin.setSingleStep(5)
    spin.setSuffix(" %")
    spin.setValue(100)
    spin.setToolTip(tip)
    return spin


class NoisePanel(QWidget):
    """Emits ``options_changed`` whenever a control changes. ``options()`` builds the DenoiseOptions."""

    options_changed = Signal()
    strength_changed = Signal(float)  # 0-1; applies to a finished result without a new run

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._estimate: NoiseEstimate | None = None
        self._controls_enabled = True  # False while a run holds the options (set_controls_enabled)
        self._hints: dict[str, str] = {}  # kind ("sigma", "camera") -> rich text of the estimate's hints

        noise = QGroupBox("Noise level")
        form = QFormLayout(noise)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.sigma_label = QLabel("–")
        self.sigma_label.setObjectName("sigmaLabel")
        self.sigma_label.setWordWrap(True)  # "(8-bit units, camera noise)" is cut off in a narrow panel otherwise
        self.sigma_label.setToolTip("Standard deviation of the noise, estimated from the photo (0–255 scale).")
        self.hint_label = QLabel("")
        self.hint_label.setObjectName("hiddenNoiseHint")
        self.hint_label.setWordWrap(True)
        self.hint_label.setVisible(False)
        # the hints end in a link that applies what they suggest (noise:real, sigma:18)
        self.hint_label.setTextFormat(Qt.TextFormat.RichText)
        self.hint_label.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                                | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.hint_label.linkActivated.connect(self.apply_hint)
        self.t_label = QLabel("–")
        self.t_label.setObjectName("timestepLabel")
        self.t_label.setToolTip("Diffusion timestep t* whose noise level matches the photo; denoising starts there.")
        self.steps_label = QLabel("–")
        self.steps_label.setToolTip("Network evaluations the next run will take.")
        self.noise_combo = _choice_combo(NOISE_TYPES, "noiseTypeCombo")
        form.addRow("Noise type:", self.noise_combo)
        form.addRow("Estimated σ:", self.sigma_label)
        form.addRow("Timestep t*:", self.t_label)
        form.addRow("Planned steps:", self.steps_label)
        form.addRow(self.hint_label)

        self.override_check = QCheckBox("Set σ manually")
        self.override_check.setToolTip("Use your own noise level instead of the estimate "
                                       "(higher = stronger smoothing).")
        self.sigma_slider = QSlider(Qt.Orientation.Horizontal)
        self.sigma_slider.setRange(0, int(SIGMA_MAX * _SLIDER_SCALE))
        self.sigma_slider.setSingleStep(_SLIDER_SCALE)
        self.sigma_slider.setPageStep(5 * _SLIDER_SCALE)
        self.sigma_spin = QDoubleSpinBox()
        self.sigma_spin.setRange(0.0, SIGMA_MAX)
        self.sigma_spin.setDecimals(1)
        self.sigma_spin.setSingleStep(0.5)
        self.sigma_spin.setValue(25.0)
        self.sigma_slider.setValue(250)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.sigma_slider, 1)
        row.addWidget(self.sigma_spin)
        form.addRow(self.override_check)
        form.addRow(row)

        opts = QGroupBox("Options")
        oform = QFormLayout(opts)
        oform.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.mode_combo = _choice_combo(MODES)
        self.quality_combo = _choice_combo(QUALITIES, "qualityCombo")
        self.strength_spin = _percent_spin(
            "strengthSpin", "How much of the brightness noise (grain) is removed. Below 100 % some of the "
            "original's grain is kept, for a natural look. Changing it after a run updates the result at once.")
        self.color_spin = _percent_spin(
            "colorStrengthSpin", "How much of the colour noise (coloured speckles and blotches) is removed, "
            "whatever Strength keeps of the grain. Changing it after a run updates the result at once.")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, MAX_STEPS)
        self.steps_spin.setSpecialValueText("Default")
        self.steps_spin.setToolTip("Number of reverse steps. Default: 1 for Fidelity (3 from t* 80 up, heavy "
                                   "noise), t*+1 for Detail. Fidelity with more steps runs a deterministic "
                                   "DDIM; Detail with fewer steps strides the chain.")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setToolTip("Random seed of the Detail mode (same seed = same result).")
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto", "auto")
        for dev in available_devices():
            self.device_combo.addItem(dev.label, dev.name)
        self.device_combo.setToolTip("Where the network runs. Auto picks the first CUDA GPU, else the CPU.")
        self.network_combo = _choice_combo(NETWORKS, "networkCombo")
        self.network_combo.setItemText(0, f"Auto ({auto_network_label('cpu')})")
        oform.addRow("Mode:", self.mode_combo)
        oform.addRow("Quality:", self.quality_combo)
        oform.addRow("Strength:", self.strength_spin)
        oform.addRow("Colour noise:", self.color_spin)
        oform.addRow("Steps:", self.steps_spin)
        oform.addRow("Seed:", self.seed_spin)
        oform.addRow("Device:", self.device_combo)
        oform.addRow("Network:", self.network_combo)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(noise)
        layout.addWidget(opts)

        self.override_check.toggled.connect(self._on_override)
        self.override_check.toggled.connect(self._show_hints)
        self.noise_combo.currentIndexChanged.connect(self._show_hints)
        self.sigma_slider.valueChanged.connect(self._slider_moved)
        self.sigma_spin.valueChanged.connect(self._spin_changed)
        for spin in (self.strength_spin, self.color_spin):
            spin.valueChanged.connect(lambda _v: self.strength_changed.emit(self.strength()))
        for sig in (self.noise_combo.currentIndexChanged, self.mode_combo.currentIndexChanged,
                    self.quality_combo.currentIndexChanged, self.steps_spin.valueChanged,
                    self.seed_spin.valueChanged, self.device_combo.currentIndexChanged,
                    self.network_combo.currentIndexChanged):
            sig.connect(self.options_changed)
        self._on_override(False)

    # -- controls ----------------------------------------------------------------------------------
    def _enable_sigma_controls(self) -> None:
        """σ's slider and box take input while it is set by hand and no run holds the options."""
        on = self._controls_enabled and self.override_check.isChecked()
        self.sigma_slider.setEnabled(on)
        self.sigma_spin.setEnabled(on)

    def _on_override(self, on: bool) -> None:
        self._enable_sigma_controls()
        if not on and self._estimate is not None:  # the greyed box shows the level a run will use again
            self.set_sigma(self._estimate.sigma)
        self.options_changed.emit()

    def _slider_moved(self, v: int) -> None:
        value = v / _SLIDER_SCALE
        if abs(self.sigma_spin.value() - value) > 1e-6:
            self.sigma_spin.setValue(value)

    def _spin_changed(self, value: float) -> None:
        tick = round(value * _SLIDER_SCALE)
        if self.sigma_slider.value() != tick:
            self.sigma_slider.blockSignals(True)
            self.sigma_slider.setValue(tick)
            self.sigma_slider.blockSignals(False)
        if self.override_check.isChecked():
            self.options_changed.emit()

    # -- state -------------------------------------------------------------------------------------
    def estimate(self) -> NoiseEstimate | None:
        return self._estimate

    def _show_hints(self) -> None:
        """The estimate's hints that still apply: none once σ is set by hand, and those about the noise type
        only while it is Auto."""
        auto = self.noise_model() == "auto"
        shown = [] if self.override_check.isChecked() else [
            text for kind, text in self._hints.items() if kind not in ("camera", "mosaic") or auto]
        self.hint_label.setText("<br>".join(shown))
        self.hint_label.setVisible(bool(shown))

    def set_estimating(self) -> None:
        self._estimate = None
        self._hints = {}
        self.hint_label.setVisible(False)
        self.sigma_label.setText("estimating…")
        self.t_label.setText("…")
        self.steps_label.setText("…")

    def clear_estimate(self, text: str = "–") -> None:
        self._estimate = None
        self._hints = {}
        self.hint_label.setVisible(False)
        self.sigma_label.setText(text)
        self.t_label.setText("–")
        self.steps_label.setText("–")

    def set_estimate(self, est: NoiseEstimate) -> None:
        self._estimate = est
        kind = "camera noise" if est.correlated else ("white noise" if est.timestep >= 0 else "no noise found")
        if est.two_level:
            kind = "black and white only"
        self.sigma_label.setText(f"{est.sigma:.1f}  (8-bit units, {kind})")
        hidden = est.analysis.hidden_noise_sigma if est.analysis is not None else None
        camera = est.analysis is not None and est.analysis.mosaic_pattern
        self._hints = {}
        if hidden is not None:
            self._hints["sigma"] = (f"Part of the noise may be hidden from the estimate (JPEG compression, or "
                                    f"grain the same in every colour). If the photo still looks "
                                    f"grainy, set σ manually to about {hidden:.0f}. "
                                    f"<a href='sigma:{hidden:.0f}'>Set σ {hidden:.0f}</a>")
        if camera:
            self._hints["camera"] = ("The fine grain follows a camera's colour-filter grid and was kept as "
                                     "detail. If the photo still looks grainy, choose Noise type ▸ Camera "
                                     "noise. <a href='noise:real'>Use Camera noise</a>")
        if est.analysis is not None and est.analysis.mosaic_noise:
            self._hints["mosaic"] = ("The grain follows a camera's colour-filter grid and is removed as camera "
                                     "noise. If fine texture (grass, foliage) comes out smeared, choose Noise "
                                     "type ▸ Gaussian (white). <a href='noise:gaussian'>Use Gaussian (white)</a>")
        self._show_hints()
        self.t_label.setText(str(est.timestep) if est.timestep >= 0 else "none (no noise to remove)")
        if not self.override_check.isChecked():
            self.set_sigma(est.sigma)
        self.options_changed.emit()

    def set_planned(self, steps: int | None, timestep: int | None = None, sigma: float | None = None) -> None:
        """Show the step count of the next run and its t*; ``sigma``: the level the run uses, named
        beside t* when it is not the estimate (e.g. Noise type ▸ Camera noise chosen by hand)."""
        views = self.ensemble()
        text = "–" if steps is None else str(steps) + (f"  (× {views} views)" if views > 1 else "")
        self.steps_label.setText(text)
        if timestep is not None and self.override_check.isChecked():
            self.t_label.setText(f"{timestep} (manual σ)" if timestep >= 0 else "none (σ too low)")
        elif timestep is not None:
            other = (sigma is not None and self._estimate is not None and timestep >= 0
                     and abs(sigma - self._estimate.sigma) > 0.05)
            self.t_label.setText(("none (no noise to remove)" if timestep < 0 else str(timestep))
                                 + (f"  (runs at σ {sigma:.1f})" if other else ""))
        elif self._estimate is not None:
            t = self._estimate.timestep
            self.t_label.setText(str(t) if t >= 0 else "none (no noise to remove)")

    def apply_hint(self, link: str) -> None:
        """Apply what a hint suggests: ``sigma:VALUE`` sets σ manually, ``noise:MODEL`` the noise type (not
        while a run holds the controls: the result would not be what the panel then says)."""
        if not self._controls_enabled:
            return
        kind, _, value = link.partition(":")
        if kind == "sigma":
            self.set_override(float(value))
        elif kind == "noise":
            self.set_noise_model(value)

    def set_sigma(self, sigma: float) -> None:
        self.sigma_spin.setValue(max(0.0, min(SIGMA_MAX, float(sigma))))

    def sigma_override(self) -> float | None:
        return float(self.sigma_spin.value()) if self.override_check.isChecked() else None

    def set_override(self, sigma: float | None) -> None:
        if sigma is None:
            self.override_check.setChecked(False)
        else:
            self.set_sigma(sigma)
            self.override_check.setChecked(True)

    def noise_model(self) -> str:
        return str(self.noise_combo.currentData())

    def set_noise_model(self, model: str) -> None:
        i = self.noise_combo.findData(model)
        self.noise_combo.setCurrentIndex(i if i >= 0 else 0)

    def mode(self) -> str:
        return str(self.mode_combo.currentData())

    def set_mode(self, mode: str) -> None:
        i = self.mode_combo.findData(mode)
        if i >= 0:
            self.mode_combo.setCurrentIndex(i)

    def ensemble(self) -> int:
        """Network views averaged per step (``DenoiseOptions.ensemble``) from the Quality choice."""
        return int(self.quality_combo.currentData())

    def set_ensemble(self, views: int) -> None:
        i = self.quality_combo.findData(int(views))
        self.quality_combo.setCurrentIndex(i if i >= 0 else 0)

    def strength(self) -> float:
        """Share of the noise removed, 0-1 (``DenoiseOptions.strength``)."""
        return self.strength_spin.value() / 100.0

    def set_strength(self, percent: int) -> None:
        self.strength_spin.setValue(int(percent))

    def color_strength(self) -> float:
        """Share of the colour noise removed, 0-1 (``DenoiseOptions.color_strength``)."""
        return self.color_spin.value() / 100.0

    def set_color_strength(self, percent: int) -> None:
        self.color_spin.setValue(int(percent))

    def steps(self) -> int:
        return int(self.steps_spin.value())

    def set_steps(self, steps: int) -> None:
        self.steps_spin.setValue(int(steps))

    def seed(self) -> int:
        return int(self.seed_spin.value())

    def set_seed(self, seed: int) -> None:
        self.seed_spin.setValue(int(seed))

    def device(self) -> str:
        return str(self.device_combo.currentData())

    def set_device(self, name: str) -> None:
        i = self.device_combo.findData(name)
        self.device_combo.setCurrentIndex(i if i >= 0 else 0)

    def network(self) -> str:
        return str(self.network_combo.currentData())

    def set_network(self, name: str) -> None:
        i = self.network_combo.findData(name)
        self.network_combo.setCurrentIndex(i if i >= 0 else 0)

    def reset_options(self) -> None:
        """Every option back to its default (``DenoiseOptions()``): noise type Auto with the estimated σ,
        Fidelity, Normal quality, Strength and Colour noise 100 %, default steps, seed 0, Auto device and
        network. The estimate itself stays."""
        d = DenoiseOptions()
        self.set_override(None)
        self.set_noise_model(d.noise_model)
        self.set_mode(d.mode)
        self.set_ensemble(d.ensemble)
        self.set_strength(round(d.strength * 100))
        self.set_color_strength(round(d.color_strength * 100))
        self.set_steps(d.steps or 0)
        self.set_seed(d.seed)
        self.set_device(d.device)
        self.set_network(d.network)

    def options(self) -> DenoiseOptions:
        """Options for a run on the open photo: :meth:`batch_options`, except that a manual sigma with "Auto"
        keeps the noise type the estimate detected. With sigma None the run plans from the noise analysis
        behind the estimate (see MainWindow.run_denoise)."""
        opts = self.batch_options()
        if opts.noise_model == "auto" and opts.sigma is not None and self._estimate is not None:
            opts = replace(opts, noise_model="real" if self._estimate.correlated else "gaussian")
        return opts

    def batch_options(self) -> DenoiseOptions:
        """Options for a batch: noise type and sigma are estimated per file unless set by hand."""
        return DenoiseOptions(sigma=self.sigma_override(), mode=self.mode(), steps=self.steps() or None,
                              seed=self.seed(), device=self.device(), noise_model=self.noise_model(),
                              ensemble=self.ensemble(), strength=self.strength(),
                              color_strength=self.color_strength(), network=self.network())

    def set_controls_enabled(self, enabled: bool) -> None:
        self._controls_enabled = enabled
        for w in (self.noise_combo, self.override_check, self.mode_combo, self.quality_combo, self.steps_spin,
                  self.seed_spin, self.device_combo, self.network_combo, self.hint_label):
            w.setEnabled(enabled)
        self._enable_sigma_controls()
