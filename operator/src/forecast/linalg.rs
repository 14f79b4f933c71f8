//! Small dense linear algebra over ndarray: what least squares needs, nothing more.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

/// Solves `A x = b` for a symmetric positive semi-definite `A` (a Gram matrix `XᵀX`) by
/// Cholesky. Normal equations lose precision when lags are collinear (a constant or
/// perfectly periodic series makes `XᵀX` singular), so when a pivot collapses a ridge
/// `λI` is added and grown until the factorisation is well conditioned. Returns `None`
/// only if `A` or `b` hold non-finite values.
pub(crate) fn solve_spd(a: ArrayView2<'_, f64>, b: ArrayView1<'_, f64>) -> Option<Array1<f64>> {
    let n = a.nrows();
    if n == 0 || a.ncols() != n || b.len() != n {
        return None;
    }
    if a.iter().chain(b.iter()).any(|v| !v.is_finite()) {
        return None;
    }
    let scale = (0..n)
        .map(|i| a[[i, i]].abs())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut ridge = 0.0;
    for _ in 0..12 {
        if let Some(l) = cholesky(a, ridge, scale) {
            let x = cho_solve(&l, b);
            if x.iter().all(|v| v.is_finite()) {
                return Some(x);
            }
        }
        ridge = if ridge == 0.0 {
            scale * 1e-10
        } else {
            ridge * 100.0
        };
    }
    None
}

/// Lower-triangular `L` with `L Lᵀ = A + ridge·I`, or `None` when a pivot is not clearly
/// positive relative to the matrix scale (numerically singular).
fn cholesky(a: ArrayView2<'_, f64>, ridge: f64, scale: f64) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    let tiny = scale * 1e-12;
    for j in 0..n {
        let mut d = a[[j, j]] + ridge;
        for k in 0..j {
            d -= l[[j, k]] * l[[j, k]];
        }
        if d.is_nan() || d <= tiny {
            return None;
        }
        let djj = d.sqrt();
        l[[j, j]] = djj;
        for i in (j + 1)..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = s / djj;
        }
    }
    Some(l)
}

/// Solves `L Lᵀ x = b` by forward then backward substitution.
fn cho_solve(l: &Array2<f64>, b: ArrayView1<'_, f64>) -> Array1<f64> {
    let n = l.nrows();
    let mut z = Array1::<f64>::zeros(n);
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[[i, k]] * z[k];
        }
        z[i] = s / l[[i, i]];
    }
    let mut x = Array1::<f64>::zeros(n);
    for i in (0..n).rev() {
        let mut s = z[i];
        for k in (i + 1)..n {
            s -= l[[k, i]] * x[k];
        }
        x[i] = s / l[[i, i]];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn solves_a_well_conditioned_system() {
        let a = array![[4.0, 2.0], [2.0, 3.0]];
        let b = array![2.0, 1.0];
        let x = solve_spd(a.view(), b.view()).unwrap();
        let r = a.dot(&x) - &b;
        assert!(r.iter().all(|v| v.abs() < 1e-12), "{x:?}");
    }

    #[test]
    fn singular_system_gets_a_ridge_and_a_finite_answer() {
        // Two identical columns: XᵀX is singular.
        let a = array![[2.0, 2.0], [2.0, 2.0]];
        let b = array![4.0, 4.0];
        let x = solve_spd(a.view(), b.view()).unwrap();
        assert!(x.iter().all(|v| v.is_finite()));
        // The ridge solution splits the weight evenly and still fits.
        assert!((x[0] + x[1] - 2.0).abs() < 1e-6, "{x:?}");
    }

    #[test]
    fn refuses_non_finite_input() {
        let a = array![[f64::NAN, 0.0], [0.0, 1.0]];
        let b = array![1.0, 1.0];
        assert!(solve_spd(a.view(), b.view()).is_none());
    }
}
