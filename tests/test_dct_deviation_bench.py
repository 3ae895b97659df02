"""The DCT-decode deviation bench measures a real difference, and only where a reduced scale applies."""

from __future__ import annotations

import numpy as np
import pytest

from genimage_fast.bench.dct_deviation import deviation, markdown, photo_like_jpegs, radial_log_spectrum
from genimage_fast.errors import GenImageError
from tests.conftest import requires_turbojpeg


@requires_turbojpeg  # the reduced decode is PyTurboJPEG's
def test_deviation_is_measured_where_the_reduced_decode_applies():
    data = photo_like_jpegs(count=1)[0]  # 500 x 375
    small = deviation(data, 32)  # 375 / 8 >= 2 * 32: decoded at 1/4 or 1/8
    assert small is not None and small["scale"] >= 4
    assert small["mean_abs"] > 0 and small["spectrum_high"] > small["q95_spectrum_high"]
    assert deviation(data, 224) is None  # no reduced scale keeps 2x 224 of a 375 px short side
    table = markdown({"rows": [{"set": "x", "size": 32, "images": 1, "reduced": 1, **small,
                                "images_per_second": {"full": 1.0, "dct-scaled": 2.0}}]})
    assert "| x | 32 | 1/1 |" in table


def test_radial_profile_of_a_flat_image_is_flat_but_dc():
    flat = np.full((32, 32, 3), 128, dtype=np.uint8)
    profile = radial_log_spectrum(flat)
    assert len(profile) == 16 and np.allclose(profile[1:], np.log(1e-3)) and profile[0] > 0


def test_without_turbojpeg_the_reduced_decode_is_one_line_error(without_turbojpeg):
    """No PyTurboJPEG: the "dct-scaled" decode refuses in one line, never a full decode that measures 0."""
    with pytest.raises(GenImageError, match="fast_jpeg_decode: PyTurboJPEG does not load") as info:
        deviation(photo_like_jpegs(count=1)[0], 32)
    assert "\n" not in str(info.value)
