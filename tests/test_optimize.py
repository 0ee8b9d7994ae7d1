"""The package's one Levenberg-Marquardt (relurecover.optimize)."""

import time

import numpy as np
import pytest

from relurecover import optimize
from relurecover.optimize import Evaluation, LMResult, levenberg_marquardt


def linear(A, b, calls=None):
    """``F(x) = ||A x - b||^2 / 2``; counts the Gauss-Newton assemblies in ``calls``."""

    def evaluate(x):
        r = A @ x - b

        def gn():
            if calls is not None:
                calls.append(x.copy())
            return A.T @ A

        return Evaluation(0.5 * float(r @ r), A.T @ r, gn, aux=r)

    return evaluate


def rosenbrock(x):
    """Rosenbrock's function as residuals ``(10 (x2 - x1^2), 1 - x1)``: minimum at (1, 1)."""
    r = np.array([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])
    J = np.array([[-20.0 * x[0], 10.0], [-1.0, 0.0]])
    return Evaluation(0.5 * float(r @ r), J.T @ r, lambda: J.T @ J)


def test_linear_least_squares_is_solved():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((30, 5))
    b = rng.standard_normal(30)
    res = levenberg_marquardt(linear(A, b), np.zeros(5), max_iter=100, decrease_tol=1e-14)
    assert isinstance(res, LMResult)
    assert res.success and res.status == "small_step"
    np.testing.assert_allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-8)
    # the caller's evaluation at the final point comes back, aux included
    np.testing.assert_allclose(res.evaluation.aux, A @ res.x - b)
    assert res.cost == pytest.approx(0.5 * float(res.evaluation.aux @ res.evaluation.aux))


def test_rosenbrock_converges_with_a_monotone_history():
    res = levenberg_marquardt(rosenbrock, np.array([-1.2, 1.0]), max_iter=200,
                              cost_target=1e-24)
    assert res.status == "cost_target" and res.success
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-10)
    h = np.array(res.history)
    assert h.size == res.n_iter + 1
    assert np.all(np.diff(h) < 0)  # only decreasing steps are taken
    # the damping adapts: far fewer steps than a fixed heavy damping would need
    assert res.n_iter < 40


def test_gauss_newton_only_at_the_points_it_steps_from():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((20, 4))
    calls = []
    res = levenberg_marquardt(linear(A, rng.standard_normal(20), calls), np.ones(4),
                              max_iter=3)
    assert res.status == "max_iter" and not res.success and res.n_iter == 3
    assert len(calls) == 3  # one per iteration, at the current point
    np.testing.assert_array_equal(calls[0], np.ones(4))


def test_deadline_and_max_iter_zero_take_no_step():
    A = np.eye(3)
    b = np.ones(3)
    past = time.perf_counter() - 1.0
    res = levenberg_marquardt(linear(A, b), np.zeros(3), max_iter=10, deadline=past)
    assert res.status == "deadline" and not res.success and res.n_iter == 0
    assert "time limit" in res.message
    np.testing.assert_array_equal(res.x, np.zeros(3))
    res = levenberg_marquardt(linear(A, b), np.zeros(3), max_iter=0)
    assert res.status == "max_iter" and res.n_iter == 0


def test_cost_target_at_the_start():
    A = np.eye(2)
    res = levenberg_marquardt(linear(A, np.zeros(2)), np.zeros(2), max_iter=5,
                              cost_target=0.0)
    assert res.status == "cost_target" and res.n_iter == 0 and res.cost == 0.0


def test_wrong_gradient_stops_with_no_decrease():
    # a gradient of the wrong sign: every step goes uphill, the damping grows past
    # LAMBDA_MAX and the solver stops where it started
    def evaluate(x):
        return Evaluation(0.5 * float(x @ x), -x, lambda: np.eye(x.size))

    x0 = np.array([1.0, -2.0])
    res = levenberg_marquardt(evaluate, x0, max_iter=50)
    assert res.status == "no_decrease" and res.n_iter == 0
    np.testing.assert_array_equal(res.x, x0)


def test_decrease_tol_stops_earlier():
    # Rosenbrock plus a constant residual 1: the minimum cost is 1/2, not 0, so
    # only the small-step test can stop it
    def evaluate(x):
        e = rosenbrock(x)
        return Evaluation(e.cost + 0.5, e.gradient, e.gauss_newton)

    loose = levenberg_marquardt(evaluate, np.array([-1.2, 1.0]), max_iter=200,
                                decrease_tol=1e-3)
    tight = levenberg_marquardt(evaluate, np.array([-1.2, 1.0]), max_iter=200,
                                decrease_tol=1e-14)
    assert loose.status == tight.status == "small_step"
    assert loose.n_iter < tight.n_iter
    assert tight.cost < loose.cost
    np.testing.assert_allclose(tight.x, [1.0, 1.0], atol=1e-6)
    assert abs(loose.x - 1.0).max() > 1e-6  # stopped short, as asked


def test_retract_is_applied_to_every_trial():
    # a cost invariant under scaling, F(x) = ||x / |x| - t||^2 / 2, with
    # retract(x) = x / |x|: every point evaluated lies on the unit sphere
    t = np.array([0.6, 0.8, 0.0])
    seen = []

    def evaluate(x):
        seen.append(np.linalg.norm(x))
        nx = np.linalg.norm(x)
        u = x / nx
        r = u - t
        J = (np.eye(3) - np.outer(u, u)) / nx
        return Evaluation(0.5 * float(r @ r), J.T @ r, lambda: J.T @ J + 1e-12 * np.eye(3))

    res = levenberg_marquardt(evaluate, np.array([1.0, 0.0, 0.0]), max_iter=50,
                              decrease_tol=1e-20,
                              retract=lambda x: x / np.linalg.norm(x))
    np.testing.assert_allclose(seen, 1.0, rtol=1e-12)
    np.testing.assert_allclose(res.x, t, atol=1e-6)


def test_singular_gauss_newton_is_damped():
    # a zero column (a weight with no curvature) gets no step, the rest is solved
    A = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    b = np.array([1.0, 2.0, 3.0])
    res = levenberg_marquardt(linear(A, b), np.array([0.0, 5.0]), max_iter=50,
                              decrease_tol=1e-14)
    assert res.success
    np.testing.assert_allclose(res.x, [1.0, 5.0], atol=1e-8)


def test_schedule_constants_are_ordered():
    assert optimize.LAMBDA_MIN < optimize.LAMBDA_START <= optimize.LAMBDA_CONVERGED
    assert optimize.LAMBDA_CONVERGED < optimize.LAMBDA_MAX
    assert 0 < optimize.NIELSEN_MIN_FACTOR < 1


def test_nielsen_schedule_on_a_quadratic():
    # on a linear least-squares problem the model is exact (rho = 1): each step is
    # taken and the damping falls by Nielsen's bound, 1/3 per step
    rng = np.random.default_rng(3)
    A = rng.standard_normal((12, 3)) * np.array([1.0, 10.0, 0.1])
    b = rng.standard_normal(12)
    H = A.T @ A
    D = np.diag(np.diag(H))
    x = np.zeros(3)
    lam = optimize.LAMBDA_START
    for n_steps in (1, 2, 3):
        x = x - np.linalg.solve(H + lam * D, A.T @ (A @ x - b))
        lam *= optimize.NIELSEN_MIN_FACTOR
        res = levenberg_marquardt(linear(A, b), np.zeros(3), max_iter=n_steps)
        assert res.n_iter == n_steps
        np.testing.assert_allclose(res.x, x, rtol=1e-10, atol=1e-12)


def rotated_gauss_newton():
    """A small least-squares problem ``(A, b)`` whose Gauss-Newton matrix is rotated
    away from the true ``A^T A``: many steps are rejected, and the accepted ones are
    slow. Returns ``A``, ``b`` and its ``evaluate``."""
    A = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    b = np.array([1.0, 2.0, 3.0])
    c, s = np.cos(1.2), np.sin(1.2)
    Q = np.array([[c, -s], [s, c]])
    H = Q @ (A.T @ A) @ Q.T

    def evaluate(x):
        r = A @ x - b
        return Evaluation(0.5 * float(r @ r), A.T @ r, lambda: H)

    return A, b, evaluate


def test_stall_steps_stop_when_the_steps_no_longer_lower_the_cost():
    """A Gauss-Newton matrix rotated away from the true one gets many steps
    rejected, so the damping stays high and only ``no_decrease`` ends the plain
    search; with ``stall_steps`` it stops once two steps in a row gain less than
    ``decrease_tol * F``, sooner and near the minimiser."""
    A, b, evaluate = rotated_gauss_newton()
    plain = levenberg_marquardt(evaluate, np.zeros(2), max_iter=5000, decrease_tol=1e-10)
    quick = levenberg_marquardt(evaluate, np.zeros(2), max_iter=5000, decrease_tol=1e-10,
                                stall_steps=2)
    best = np.linalg.lstsq(A, b, rcond=None)[0]
    assert plain.status == "no_decrease" and quick.status == "small_step"
    assert quick.n_iter < plain.n_iter
    assert np.abs(quick.x - best).max() < 1e-4


def test_progress_stops_where_a_block_of_steps_gains_too_little():
    """``progress=(steps, gain)``: the same rotated Gauss-Newton matrix makes slow
    steps; the search stops ("slow", not a success) at the first block of ``steps``
    accepted steps that did not cut F to ``gain`` of its value before them, and every
    earlier block did."""
    A, b, evaluate = rotated_gauss_newton()
    res = levenberg_marquardt(evaluate, np.zeros(2), max_iter=5000, progress=(3, 0.9))
    assert res.status == "slow" and not res.success and "last 3" in res.message
    assert res.n_iter % 3 == 0 and res.n_iter < 5000
    assert res.history[-1] > 0.9 * res.history[-4]
    assert all(res.history[i] <= 0.9 * res.history[i - 3]
               for i in range(3, res.n_iter, 3))
    # a well-modelled problem converges without tripping it
    fast = levenberg_marquardt(linear(A, b), np.zeros(2), max_iter=100,
                               decrease_tol=1e-14, progress=(3, 0.9))
    assert fast.status == "small_step"


@pytest.mark.parametrize("progress", [(0, 0.5), (2.5, 0.5), (True, 0.5), (3, 0.0),
                                      (3, 1.5), (3, float("nan"))])
def test_progress_is_checked(progress):
    A, b, evaluate = rotated_gauss_newton()
    with pytest.raises(ValueError, match="progress"):
        levenberg_marquardt(evaluate, np.zeros(2), max_iter=10, progress=progress)
