//! The sentence that says why a plan is what it is.
