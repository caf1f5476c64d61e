"""RNN internals made visible; each module is one experiment with functions notebooks call and a `run()`
that writes JSON (and a PNG plot) for `python -m pipeline diagnose <experiment>`:

- `vanishing_gradients`: norm of dL_T/dh_t for t = 1..T, SimpleRNN vs LSTM vs GRU (fresh or trained),
  and the spectral radius of a SimpleRNN's recurrent matrix.
- `long_range`: accuracy at recalling the first token after N distractors, against N, per cell.
- `clipping`: global gradient norm per step with and without `clipnorm` on an exploding RNN.
- `hand_wired`: a SimpleRNN with hand-set weights that outputs 1 exactly when the last two inputs were 1.
"""
