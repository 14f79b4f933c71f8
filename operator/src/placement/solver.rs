//! The exact solver (being written; the interim `stability::solve` fills pools cheapest-first).
