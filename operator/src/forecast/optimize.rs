//! Derivative-free minimisation for model parameters.

/// Nelder-Mead simplex minimisation of `f` from `x0`, with an initial simplex of `step`
/// along each axis. Model losses (the squared one-step error of Holt-Winters) have no
/// cheap gradient and only a handful of parameters, which is what Nelder-Mead is for.
/// Non-finite losses count as +∞, so a parameter region that blows up is simply avoided.
/// Stops after `max_evals` evaluations or when the simplex's losses agree within `ftol`
/// (relative). Returns the best point and its loss.
pub(crate) fn nelder_mead<F: FnMut(&[f64]) -> f64>(
    mut f: F,
    x0: &[f64],
    step: f64,
    max_evals: usize,
    ftol: f64,
) -> (Vec<f64>, f64) {
    let n = x0.len();
    let mut eval = |x: &[f64]| {
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    if n == 0 {
        let v = eval(x0);
        return (Vec::new(), v);
    }
    let mut pts: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
    let mut vals: Vec<f64> = Vec::with_capacity(n + 1);
    pts.push(x0.to_vec());
    vals.push(eval(x0));
    for i in 0..n {
        let mut p = x0.to_vec();
        p[i] += step;
        vals.push(eval(&p));
        pts.push(p);
    }
    let mut evals = n + 1;
    let mut order: Vec<usize> = (0..=n).collect();
    let mut centroid = vec![0.0; n];
    let mut trial = vec![0.0; n];
    let mut trial2 = vec![0.0; n];
    while evals < max_evals {
        order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
        let best = order[0];
        let worst = order[n];
        let second = order[n - 1];
        let (fb, fw) = (vals[best], vals[worst]);
        if fw.is_finite() && (fw - fb).abs() <= ftol * (fb.abs() + fw.abs()) + 1e-300 {
            break;
        }
        centroid.iter_mut().for_each(|c| *c = 0.0);
        for &i in &order[..n] {
            for (c, x) in centroid.iter_mut().zip(&pts[i]) {
                *c += x / n as f64;
            }
        }
        // Reflect.
        for j in 0..n {
            trial[j] = centroid[j] + (centroid[j] - pts[worst][j]);
        }
        let fr = eval(&trial);
        evals += 1;
        if fr < fb {
            // Expand.
            for j in 0..n {
                trial2[j] = centroid[j] + 2.0 * (centroid[j] - pts[worst][j]);
            }
            let fe = eval(&trial2);
            evals += 1;
            if fe < fr {
                pts[worst].copy_from_slice(&trial2);
                vals[worst] = fe;
            } else {
                pts[worst].copy_from_slice(&trial);
                vals[worst] = fr;
            }
            continue;
        }
        if fr < vals[second] {
            pts[worst].copy_from_slice(&trial);
            vals[worst] = fr;
            continue;
        }
        // Contract (outside if the reflection helped a little, inside otherwise).
        let outside = fr < fw;
        for j in 0..n {
            let d = centroid[j] - pts[worst][j];
            trial2[j] = if outside {
                centroid[j] + 0.5 * d
            } else {
                centroid[j] - 0.5 * d
            };
        }
        let fc = eval(&trial2);
        evals += 1;
        if fc < fr.min(fw) {
            pts[worst].copy_from_slice(&trial2);
            vals[worst] = fc;
            continue;
        }
        // Shrink towards the best point.
        let bp = pts[best].clone();
        for &i in &order[1..] {
            for (x, b) in pts[i].iter_mut().zip(&bp) {
                *x = b + 0.5 * (*x - b);
            }
            vals[i] = eval(&pts[i]);
            evals += 1;
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| vals[a].total_cmp(&vals[b]))
        .unwrap_or(0);
    (pts[best].clone(), vals[best])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_quadratic_bowl() {
        let (x, v) = nelder_mead(
            |x| (x[0] - 1.0).powi(2) + 10.0 * (x[1] + 2.0).powi(2),
            &[0.0, 0.0],
            0.5,
            1000,
            1e-14,
        );
        assert!(
            (x[0] - 1.0).abs() < 1e-3 && (x[1] + 2.0).abs() < 1e-3,
            "{x:?}"
        );
        assert!(v < 1e-6);
    }

    #[test]
    fn non_finite_losses_are_avoided() {
        let (x, v) = nelder_mead(
            |x| {
                if x[0] < 0.0 {
                    f64::NAN
                } else {
                    (x[0] - 0.5).powi(2)
                }
            },
            &[1.0],
            0.3,
            500,
            1e-12,
        );
        assert!(v.is_finite() && (x[0] - 0.5).abs() < 1e-3, "{x:?}");
    }
}
