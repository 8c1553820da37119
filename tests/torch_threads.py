"""A fixture for tests of tiny tensors: one torch thread, restored afterwards.

On the shared 2-core machine a second thread only spin-waits for tensors this
small. Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
