"""scikit-learn estimators: :func:`~relurecover.recover_two_layer` and
:func:`~relurecover.deep.learn_deep` behind ``fit`` and ``predict``.

:class:`TwoLayerReLURegressor` recovers a two-layer network exactly where the
theory says it can (docs/algorithms.md 1-3, 6) and :class:`DeepReLURegressor`
learns a deep one by filtered PCA (docs/algorithms.md 5). Both are ordinary
scikit-learn regressors (``clone``, ``Pipeline``, ``GridSearchCV``,
``cross_val_score``), with the fitted attributes of ``MLPRegressor``
(``coefs_``, ``intercepts_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``)
and a :meth:`~TwoLayerReLURegressor.to_mlp` that returns an ``MLPRegressor``
predicting the same.

``fit`` returns a model whenever its arguments are valid (invalid ones, such as
fewer samples than features, raise a ``ValueError``). When the result is not
certified (two layers: recovery not exact; deep: held-out error above
``success_tol``) it says so with an :class:`InexactFitWarning`, which is a
scikit-learn ``ConvergenceWarning`` and a relurecover one:
``warnings.simplefilter("error", InexactFitWarning)`` turns it into an error,
which ``GridSearchCV``'s ``error_score`` then handles.

Needs scikit-learn >= 1.6 (``pip install 'relurecover[sklearn]'``);
:class:`DeepReLURegressor` uses PyTorch only when asked to (``engine``), as
:func:`learn_deep` does.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._linalg import relative_residual
from .deep._learn import MissingDependencyError
from .exceptions import ConvergenceWarning
from .networks import TwoLayerNetwork

#: what importing this module raises without scikit-learn >= 1.6.
SKLEARN_HINT = ("relurecover.estimators needs scikit-learn >= 1.6: pip install "
                "'relurecover[sklearn]'")

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # not installed, or older than 1.6 (no validate_data)
    raise MissingDependencyError(SKLEARN_HINT) from exc

__all__ = ["TwoLayerReLURegressor", "DeepReLURegressor", "InexactFitWarning"]


class InexactFitWarning(ConvergenceWarning, _SklearnConvergenceWarning):
    """``fit`` returned a model that is not certified, and says why.

    For :class:`TwoLayerReLURegressor`: the recovery was not exact (the labels
    are noisy, the network is wider than ``n_hidden``, a unit was not found
    within the budget), or nothing was recovered and the model is the
    least-squares affine fallback. For :class:`DeepReLURegressor`: the held-out
    error is above ``success_tol``. A subclass of both scikit-learn's and
    relurecover's ``ConvergenceWarning``, so either filter applies.
    """


def _seed(random_state):
    """``random_state`` in the form relurecover's ``rng=`` takes.

    None, a non-negative int and a ``numpy.random.Generator`` pass through; a
    legacy ``RandomState`` (scikit-learn's convention) gives an int seed drawn
    from it, so that it advances as scikit-learn's estimators advance it.
    """
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    return random_state


def _as_2d_targets(y):
    """``y`` of shape (n,) or (n, m) as (n, m)."""
    return y.reshape(-1, 1) if y.ndim == 1 else y


def _reraise_too_few_samples(exc, n, d):
    """Raise the error of a path that needs more rows again, in scikit-learn's words
    (``n_samples = ...``); return for any other error."""
    if str(exc).startswith("too few samples"):
        raise ValueError(f"n_samples = {n}, n_features = {d}: {exc}") from exc


def _affine_network(X, Y) -> TwoLayerNetwork:
    """The least-squares affine map ``Y ~ X W^T + c`` as a ReLU network.

    ``t = relu(t) - relu(-t)`` exactly, so with ``m < d`` the units are ``+-w_o``
    (the rows of ``W``) and ``U = [I, -I]``, else the units are ``+-e_j`` and
    ``U = [W, -W]``: ``2 min(m, d)`` units that reproduce the affine map to
    rounding. With ``W = 0`` (``X`` or ``Y`` identically zero) one dead unit and
    ``U = 0``: the constant ``c``.
    """
    n, d = X.shape
    m = Y.shape[1]
    A = np.hstack([X, np.ones((n, 1))])
    coef = np.linalg.lstsq(A, Y, rcond=None)[0]
    W, c = coef[:d].T, coef[d]
    if not np.any(W):
        return TwoLayerNetwork(np.zeros((m, 1)), np.zeros((1, d)), activation="relu", c=c)
    if m < d:
        V, U = np.vstack([W, -W]), np.hstack([np.eye(m), -np.eye(m)])
    else:
        V, U = np.vstack([np.eye(d), -np.eye(d)]), np.hstack([W, -W])
    return TwoLayerNetwork(U, V, activation="relu", c=c)


class _NetworkRegressor(RegressorMixin, BaseEstimator):
    """What both estimators share: the MLPRegressor-like attributes, ``predict``
    and ``to_mlp`` of a fitted ``network_``."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _set_network(self, net):
        """``network_`` and the attributes ``MLPRegressor`` would have."""
        if isinstance(net, TwoLayerNetwork):
            layers = [(net.V, net.b), (net.U, net.c)]
        else:
            layers = list(zip(net.weights, net.biases))
        self.network_ = net
        self.coefs_ = [np.array(W.T) for W, _ in layers]
        self.intercepts_ = [np.array(bv) for _, bv in layers]
        self.n_layers_ = len(layers) + 1
        self.n_outputs_ = net.n_outputs
        self.out_activation_ = "identity"

    def _warn(self, message):
        warnings.warn(f"{type(self).__name__}: {message}", InexactFitWarning, stacklevel=3)

    def predict(self, X):
        """Outputs of the fitted network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs, one sample a row.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            1-D for one output (as ``MLPRegressor``, also when ``y`` was a
            column at ``fit``).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Y = self.network_.predict(X)
        return Y.ravel() if Y.shape[1] == 1 else Y

    def to_mlp(self):
        """A fitted scikit-learn ``MLPRegressor`` predicting as this estimator does
        (:func:`relurecover.formats.to_mlp` of ``network_``).

        Returns
        -------
        sklearn.neural_network.MLPRegressor
            Never trained (``n_iter_ = 0``); its ``coefs_`` and ``intercepts_``
            are copies of this estimator's, and ``feature_names_in_`` too when
            ``fit`` saw them.

        Raises
        ------
        ValueError
            When ``network_`` uses an activation other than ReLU, which
            ``MLPRegressor`` does not have (its are 'identity', 'logistic',
            'tanh' and 'relu'; the rectified 'relu2', 'clipped', 'log1p',
            'step-linear' and callables are none of them).
        """
        from .formats import to_mlp

        check_is_fitted(self)
        net = self.network_
        if isinstance(net, TwoLayerNetwork) and not net.activation.is_relu:
            raise ValueError(
                f"the fitted network uses activation {net.activation.name!r}, which "
                "MLPRegressor cannot represent (its activations are 'identity', "
                "'logistic', 'tanh' and 'relu'); use this estimator's predict, or "
                "network_, instead.")
        mlp = to_mlp(net)
        if hasattr(self, "feature_names_in_"):
            mlp.feature_names_in_ = np.array(self.feature_names_in_, dtype=object)
        return mlp


class TwoLayerReLURegressor(_NetworkRegressor):
    """Exact recovery of ``y = U f(V x + b) + c`` as a scikit-learn regressor.

    ``fit`` runs :func:`relurecover.recover_two_layer` (docs/algorithms.md 1-3, 6:
    the Gaussian, general and few-outputs paths, the noisy-label estimate, biases)
    and keeps its network. When the recovery is exact, ``exact_`` is True and
    ``predict`` reproduces the labels to rounding. When it is not, ``fit`` still
    returns a model and emits an :class:`InexactFitWarning` with the reason: the
    network found (units certified so far, or the least-squares estimate for
    noisy labels), or, when no unit was found at all (labels that no such
    network produces, such as a linear trend plus noise) or ``X`` or ``y`` is
    identically zero, the least-squares affine map written as a ReLU network
    (``t = relu(t) - relu(-t)``, ``2 min(m, d)`` units; ReLU whatever
    ``activation``). ``message_`` says which.

    Parameters
    ----------
    n_hidden : int, default=None
        Hidden units ``k``; None infers it from the rank of ``y``.
    method : {"auto", "gaussian", "general", "few-outputs"}, default="auto"
        The path of :func:`recover_two_layer`.
    activation : str or callable, default="relu"
        A rectified activation (:func:`relurecover.activations.get_activation`).
        Only ReLU networks have an ``MLPRegressor`` form (:meth:`to_mlp`).
    tol : float, default=1e-9
        ``exact_`` requires a relative residual on the training data of at most
        ``tol``.
    max_starts : int, default=None
        Budget of rounding starts (None: the path's default).
    time_limit : float, default=None
        Seconds after which the search for units stops. With a limit the result
        depends on the machine's speed, so two fits may differ.
    work_rows : int, default=None
        Rows used by the rounding iterations (None: ``max(20000, 20 d)``).
    chunk_size : int, default=16384
        Rows per chunk when streaming over ``X``.
    progress : callable, default=None
        Called as ``progress(stage, fraction)`` during ``fit`` (see
        :func:`recover_two_layer`); None reports nothing.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState, default=None
        Seeds every random step; an int gives the same model on every fit.

    Attributes
    ----------
    network_ : TwoLayerNetwork
        The fitted network (``V`` of shape ``(k, d)``, ``U`` of shape ``(m, k)``).
    exact_ : bool
        Whether the recovery was exact (``recovery_.exact``).
    certificate_ : float
        Relative residual of ``network_`` on the training data, in the form of
        ``Recovery.certificate`` (inf for ``y`` identically zero).
    recovery_ : Recovery or None
        What :func:`recover_two_layer` returned (None when ``X`` or ``y`` was
        identically zero and it was not called).
    message_ : str
        The verdict in words, and the fallback when there was one.
    coefs_ : list of ndarray
        ``[V^T, U^T]``, as in ``MLPRegressor``.
    intercepts_ : list of ndarray
        ``[b, c]``.
    n_layers_ : int
        3 (input, hidden, output).
    n_outputs_ : int
        ``m``.
    out_activation_ : str
        ``"identity"``.
    n_features_in_ : int
        ``d``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Set when ``X`` has feature names (a DataFrame).

    Examples
    --------
    >>> from relurecover import TwoLayerNetwork, gaussian_inputs
    >>> truth = TwoLayerNetwork.random(8, 3, 4, bias_scale=0.5, rng=0)
    >>> X = gaussian_inputs(2000, 8, rng=1)
    >>> est = TwoLayerReLURegressor(random_state=0).fit(X, truth.predict(X))
    >>> est.exact_, est.certificate_ < 1e-12, est.coefs_[0].shape
    (True, True, (8, 3))
    """

    def __init__(self, n_hidden=None, *, method="auto", activation="relu", tol=1e-9,
                 max_starts=None, time_limit=None, work_rows=None, chunk_size=16384,
                 progress=None, random_state=None):
        self.n_hidden = n_hidden
        self.method = method
        self.activation = activation
        self.tol = tol
        self.max_starts = max_starts
        self.time_limit = time_limit
        self.work_rows = work_rows
        self.chunk_size = chunk_size
        self.progress = progress
        self.random_state = random_state

    def fit(self, X, y):
        """Recover the network from samples (docs/algorithms.md 1-3, 6).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs, one sample a row (standard Gaussian, or any distribution
            for the general paths).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Labels.

        Returns
        -------
        TwoLayerReLURegressor
            ``self``, fitted.

        Raises
        ------
        ValueError
            For arguments :func:`recover_two_layer` refuses (``n_samples <
            n_features``, ``n_hidden > n_features``, ``n_hidden > n_outputs`` on
            the Gaussian and general paths, an unknown ``method``, ...).
        """
        from .twolayer import recover_two_layer
        from .twolayer._recover import constant_row

        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=np.float64)
        Y = _as_2d_targets(y)
        n, d = X.shape
        rec = None
        if not np.any(X) or not np.any(Y):
            what = "`X`" if not np.any(X) else "`y`"
            message = (f"not recovered: {what} is identically zero, so no unit can be "
                       "determined")
            net = None
        elif constant_row(Y) is not None:
            message = ("not recovered: `y` is constant, so no unit can be determined "
                       "(it is the output bias alone)")
            net = None
        else:
            try:
                rec = recover_two_layer(
                    X, Y, n_hidden=self.n_hidden, method=self.method,
                    activation=self.activation, rng=_seed(self.random_state), tol=self.tol,
                    max_starts=self.max_starts, time_limit=self.time_limit,
                    work_rows=self.work_rows, chunk_size=self.chunk_size,
                    progress=self.progress)
            except ValueError as exc:
                _reraise_too_few_samples(exc, n, d)
                raise
            message, net = rec.message, rec.network
        if net is None:
            net = _affine_network(X, Y)
            message += (f" Fallback: the least-squares affine map, as a ReLU network "
                        f"of {net.n_hidden} units (t = relu(t) - relu(-t)).")
            certificate = relative_residual(Y, net.predict(X))
        else:
            certificate = float(rec.certificate)
        self._set_network(net)
        self.recovery_ = rec
        self.exact_ = bool(rec is not None and rec.exact)
        self.certificate_ = certificate
        self.message_ = message
        if not self.exact_:
            self._warn(message)
        return self


class DeepReLURegressor(_NetworkRegressor):
    """Learn a deep ReLU network by filtered PCA [CKM] as a scikit-learn regressor.

    ``fit`` runs :func:`relurecover.deep.learn_deep` (docs/algorithms.md 5: the
    subspace of the first layer by filtered PCA, fits in it from restarts,
    lifting and refinement) on ``(X, y)``; the network has no biases, as in
    [CKM], unless ``biases=True``. When the held-out error is above ``success_tol``
    the model is still returned, with an :class:`InexactFitWarning` that says so.
    Runs on the base install (the numpy engine) as well as with PyTorch.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=None
        Hidden widths ``(w_1, ..., w_L)``; None tries ``(2r,)`` and ``(2r, 2r)``
        (``r`` the subspace dimension) and keeps the better held out.
    subspace : Subspace or array-like of shape (n_features, r), default=None
        A basis to fit in instead of running filtered PCA.
    n_directions : int, default=None
        Directions filtered PCA looks for (None: until none is above the floor).
    restarts : int, default=24
        Random starts of the subspace fit.
    heldout : float, default=0.1
        Fraction of the rows held out for model selection and the verdict.
    fit_rows : int, default=5000
        Rows of the subspace fits.
    refine_rows : int, default=None
        Rows of the full-dimensional refinement (None: ``max(20000, 20 *
        n_parameters)``).
    fit_iter : int, default=150
        L-BFGS iterations per subspace fit.
    n_screen : int, default=4
        Subspace fits lifted and screened in full dimension.
    screen_iter : int, default=150
        L-BFGS iterations of each screened fit.
    max_iter : int, default=2000
        L-BFGS iterations of the full-dimensional refinement at most (in segments,
        between Levenberg-Marquardt attempts).
    polish_iter : int, default=40
        L-BFGS iterations on all training rows at the end (0: skip), where the
        held-out error is above 10 times the refinement rows' error.
    lm_iter : int, default=60
        Levenberg-Marquardt steps per attempt (0: skip).
    lm_max_params : int, default=3000
        Skip Levenberg-Marquardt for networks with more weights in full dimension.
    rounds : int, default=2
        Rounds of fitting; later ones restart in the span of the refined first
        layer.
    tol : float, default=1e-14
        Stop when the relative training error is below this.
    success_tol : float, default=1e-3
        ``success_`` is ``heldout_error_ <= success_tol``.
    time_limit : float, default=None
        Seconds after which the refinement stops (the result then depends on the
        machine's speed).
    n_threads : int, default=1
        Threads of the refinement (None: as they are; the same seed gives the
        same bits only for a fixed number).
    pca_options : dict, default=None
        Keyword arguments for :func:`relurecover.deep.filtered_pca`.
    progress : callable, default=None
        Called as ``progress(stage, fraction)`` during ``fit`` (see
        :func:`learn_deep`); None reports nothing.
    biases : bool, default=False
        Fit biases in every layer (see :func:`learn_deep`).
    engine : {"auto", "numpy", "torch"}, default="auto"
        Who does the arithmetic of the fits (see :func:`learn_deep`).
    prune : bool, default=True
        Remove silent and duplicated hidden units at the end (see :func:`learn_deep`).
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState, default=None
        Seeds the held-out split and the restarts.

    Attributes
    ----------
    network_ : DeepNetwork
        The fitted network (``W_1`` of shape ``(w_1, d)``; zero biases unless
        ``biases=True``).
    success_ : bool
        ``heldout_error_ <= success_tol``.
    heldout_error_ : float
        Relative square error on the held-out rows.
    deep_fit_ : DeepFit
        What :func:`learn_deep` returned (subspace, timings, diagnostics).
    n_iter_ : int
        L-BFGS and Levenberg-Marquardt iterations of the kept fit in full
        dimension (screening, refinement, Levenberg-Marquardt, polish).
    coefs_ : list of ndarray
        ``[W_1^T, ..., W_{L+1}^T]``, as in ``MLPRegressor``.
    intercepts_ : list of ndarray
        The biases, one vector per layer (zero without ``biases=True``).
    n_layers_ : int
        ``L + 2``.
    n_outputs_ : int
        ``m``.
    out_activation_ : str
        ``"identity"``.
    n_features_in_ : int
        ``d``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Set when ``X`` has feature names (a DataFrame).

    Examples
    --------
    >>> from relurecover import DeepNetwork, gaussian_inputs
    >>> truth = DeepNetwork.random(6, [3], rng=8)
    >>> X = gaussian_inputs(3000, 6, rng=1)
    >>> est = DeepReLURegressor(3, restarts=4, rounds=1, random_state=0)
    >>> est = est.fit(X, truth.predict(X).ravel())
    >>> est.success_, est.n_layers_, est.predict(X[:3]).shape
    (True, 3, (3,))
    """

    def __init__(self, hidden_layer_sizes=None, *, subspace=None, n_directions=None,
                 restarts=24, heldout=0.1, fit_rows=5000, refine_rows=None, fit_iter=150,
                 n_screen=4, screen_iter=150, max_iter=2000, polish_iter=40, lm_iter=60,
                 lm_max_params=3000, rounds=2, tol=1e-14, success_tol=1e-3,
                 time_limit=None, n_threads=1, pca_options=None, progress=None,
                 biases=False, engine="auto", prune=True, random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.subspace = subspace
        self.n_directions = n_directions
        self.restarts = restarts
        self.heldout = heldout
        self.fit_rows = fit_rows
        self.refine_rows = refine_rows
        self.fit_iter = fit_iter
        self.n_screen = n_screen
        self.screen_iter = screen_iter
        self.max_iter = max_iter
        self.polish_iter = polish_iter
        self.lm_iter = lm_iter
        self.lm_max_params = lm_max_params
        self.rounds = rounds
        self.tol = tol
        self.success_tol = success_tol
        self.time_limit = time_limit
        self.n_threads = n_threads
        self.pca_options = pca_options
        self.progress = progress
        self.biases = biases
        self.engine = engine
        self.prune = prune
        self.random_state = random_state

    def fit(self, X, y):
        """Learn the network from samples (docs/algorithms.md 5).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Standard Gaussian inputs, one sample a row.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Labels.

        Returns
        -------
        DeepReLURegressor
            ``self``, fitted.

        Raises
        ------
        MissingDependencyError
            ``engine="torch"`` without PyTorch.
        ValueError
            For arguments :func:`learn_deep` refuses (too few samples for the
            held-out split, an all-zero or constant ``y``, bad widths, ...).
        """
        from .deep import learn_deep

        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=np.float64)
        n, d = X.shape
        try:
            fit = learn_deep(
                X, _as_2d_targets(y), self.hidden_layer_sizes, rng=_seed(self.random_state),
                subspace=self.subspace, n_directions=self.n_directions,
                restarts=self.restarts, heldout=self.heldout, fit_rows=self.fit_rows,
                refine_rows=self.refine_rows, fit_iter=self.fit_iter,
                n_screen=self.n_screen, screen_iter=self.screen_iter,
                max_iter=self.max_iter, polish_iter=self.polish_iter,
                lm_iter=self.lm_iter, lm_max_params=self.lm_max_params,
                rounds=self.rounds, tol=self.tol, success_tol=self.success_tol,
                time_limit=self.time_limit, n_threads=self.n_threads,
                pca_options=self.pca_options, progress=self.progress, biases=self.biases,
                engine=self.engine, prune=self.prune)
        except ValueError as exc:
            _reraise_too_few_samples(exc, n, d)
            raise
        self._set_network(fit.network)
        self.deep_fit_ = fit
        self.success_ = bool(fit.success)
        self.heldout_error_ = float(fit.heldout_error)
        diag = fit.diagnostics
        self.n_iter_ = int(diag.get("refine_iterations", 0) + diag.get("lm_iterations", 0)
                           + diag.get("polish_iterations", 0))
        if not self.success_:
            self._warn(fit.message)
        return self
