#!/usr/bin/env bash
# Installs everything the assistant needs on a fresh Debian 12 machine, as root:
# system packages (audio, speech, synthesis, PostgreSQL, the demo music), a
# virtual environment in .venv, and the project itself. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libportaudio2 libasound2-plugins alsa-utils   # PortAudio for sounddevice; ALSA file plugin in tests
  libsndfile1 sox libsox-fmt-all ffmpeg         # decoding and test fixtures
  espeak-ng                                     # spoken answers, synthesised speech in tests
  flite                                         # more synthesised voices for the voice tests
  fluidsynth fluid-soundfont-gm timgm6mb-soundfont   # rendering scores to audio
  wesnoth-1.16-music singularity-music          # the demo library's recordings
  tmux                                          # terminal screenshots of the chat
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tests' PostgreSQL (pgserver's binaries, a dev dependency) runs as this user, never root.
if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin postgres
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if ! .venv/bin/python -c "import musicbert, torch, faiss" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/pip install -q --upgrade pip
  # torch first with the exact pin: the local CPU wheel, never the CUDA build.
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[dev]"
  # ONNX Runtime runs musicnn on the CPU (pinned in pyproject.toml too): said here so
  # that an older .venv gets them on its next install.
  .venv/bin/pip install -q onnxruntime==1.32.0 onnx==1.23.2
  # musicnn only for its checkpoint files; it is never imported (it needs TensorFlow).
  .venv/bin/pip install -q --no-deps musicnn==0.1.0
  touch .venv/.installed
fi
echo "ready: .venv/bin/musicbert"
