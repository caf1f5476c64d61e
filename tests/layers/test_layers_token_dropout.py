"""Word dropout replaces tokens by the out-of-vocabulary id in training only, never padding."""

import numpy as np
import pytest

from pipeline.layers import token_dropout


def test_training_replaces_about_rate_of_tokens_and_keeps_padding():
    layer = token_dropout.TokenDropout(0.3, seed=1)
    token_ids = np.tile(np.array([[5, 6, 7, 8, 0, 0]], dtype="int32"), (2000, 1))
    dropped = np.asarray(layer(token_ids, training=True))
    assert np.all(dropped[:, 4:] == 0)
    changed = dropped[:, :4] != token_ids[:, :4]
    assert np.all(dropped[:, :4][changed] == 1)
    assert 0.27 < changed.mean() < 0.33


def test_inference_and_zero_rate_leave_tokens_unchanged():
    token_ids = np.array([[5, 6, 0]], dtype="int32")
    np.testing.assert_array_equal(token_dropout.TokenDropout(0.5)(token_ids, training=False), token_ids)
    np.testing.assert_array_equal(token_dropout.TokenDropout(0.0)(token_ids, training=True), token_ids)
    with pytest.raises(ValueError, match="rate"):
        token_dropout.TokenDropout(1.0)
