//! Stored embeddings and cosine similarity: decoding a stored vector (JSON array text or
//! f32 little-endian BLOB, the form ingest writes), and keeping the top k matches.

/// Encodes `vector` as the BLOB ingest stores: f32 values, little-endian, back to back.
pub fn encode_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes a BLOB written by [`encode_blob`]; `None` when its length is not a multiple
/// of 4 or it is empty.
pub fn decode_blob(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.is_empty() || bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Decodes a JSON array of numbers (`[0.1, -0.2, …]`); `None` for anything else.
pub fn decode_json(text: &str) -> Option<Vec<f32>> {
    let values: Vec<f64> = serde_json::from_str(text).ok()?;
    (!values.is_empty()).then(|| values.into_iter().map(|x| x as f32).collect())
}

/// Cosine similarity of `a` and `b` computed in f64; `None` when the lengths differ or
/// either vector is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let denominator = na.sqrt() * nb.sqrt();
    (denominator > 0.0 && denominator.is_finite()).then(|| dot / denominator)
}

/// The `k` best-scored items seen, best first; on equal scores the earlier item wins.
#[derive(Debug)]
pub struct TopK<T> {
    k: usize,
    items: Vec<(f64, T)>,
}

impl<T> TopK<T> {
    /// Keeps at most `k` items.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    /// Whether an item scored `score` would be kept.
    pub fn admits(&self, score: f64) -> bool {
        self.k > 0
            && (self.items.len() < self.k || self.items.last().is_some_and(|(s, _)| score > *s))
    }

    /// Offers an item; kept only if it is among the best `k` so far.
    pub fn push(&mut self, score: f64, item: T) {
        if !self.admits(score) {
            return;
        }
        let at = self.items.partition_point(|(s, _)| *s >= score);
        self.items.insert(at, (score, item));
        self.items.truncate(self.k);
    }

    /// The kept items, best first.
    pub fn into_sorted(self) -> Vec<(f64, T)> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trips_and_cosine_is_bounded() {
        let v = vec![0.5f32, -1.0, 2.0];
        assert_eq!(decode_blob(&encode_blob(&v)), Some(v.clone()));
        assert_eq!(decode_blob(&[1, 2, 3]), None);
        assert_eq!(decode_json("[0.5, -1, 2]"), Some(v.clone()));
        assert_eq!(decode_json("\"x\""), None);
        let same = cosine(&v, &v).unwrap_or_default();
        assert!((same - 1.0).abs() < 1e-9);
        assert_eq!(cosine(&v, &[1.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), None);
    }

    #[test]
    fn top_k_keeps_the_best_and_earliest_on_ties() {
        let mut top = TopK::new(2);
        for (s, name) in [(0.1, "a"), (0.9, "b"), (0.5, "c"), (0.9, "d"), (0.2, "e")] {
            top.push(s, name);
        }
        let names: Vec<&str> = top.into_sorted().into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["b", "d"]);
    }
}
