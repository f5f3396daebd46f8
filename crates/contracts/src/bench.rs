//! Gas benchmark (filled in below).
