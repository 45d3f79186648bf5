//! A publishing browser's simulcast encodings (RTP stream ids, "rids") ranked by picture size:
//! the smallest becomes encoding 0, which every member carries first, and the largest
//! encoding 1, shed first by a congested link ([`media::Frame::encoding`]). A browser sending
//! three encodings has its middle one left out (a member carries two).
//!
//! Sizes come from VP8 keyframes; until every rid's size is known (another codec, or no
//! keyframe yet) they rank by their place in the session's description (browsers list their
//! encodings as the page gave them). Sans-IO.

use str0m::media::Rid;

/// Rids one publisher may have at most (more are ignored).
const MAX_RIDS: usize = 8;

/// One rid and the picture size of its last keyframe.
#[derive(Clone, Copy, Debug)]
struct Rung {
    rid: Rid,
    /// Pixels of its last keyframe, if one was read.
    pixels: Option<u32>,
    /// Its place among the rids first seen (the description's order when it is known).
    place: usize,
}

/// A publisher's rids, ranked.
#[derive(Clone, Debug, Default)]
pub(super) struct RidLadder {
    rungs: Vec<Rung>,
}

impl RidLadder {
    /// Notes `rid`'s frame (`keyframe_size` when it is a keyframe whose size was read, `place`
    /// its index in the description if known); the encoding its frames travel as, or `None`
    /// for a rid that is neither the smallest nor the largest.
    pub(super) fn encoding_of(
        &mut self,
        rid: Rid,
        keyframe_size: Option<(u16, u16)>,
        place: Option<usize>,
    ) -> Option<u8> {
        let index = match self.rungs.iter().position(|r| r.rid == rid) {
            Some(i) => i,
            None if self.rungs.len() < MAX_RIDS => {
                let place = place.unwrap_or(MAX_RIDS + self.rungs.len());
                self.rungs.push(Rung {
                    rid,
                    pixels: None,
                    place,
                });
                self.rungs.len() - 1
            }
            None => return None,
        };
        if let Some((w, h)) = keyframe_size {
            self.rungs[index].pixels = Some(u32::from(w) * u32::from(h));
        }
        self.rank(rid)
    }

    /// The encoding `rid` travels as now.
    fn rank(&self, rid: Rid) -> Option<u8> {
        if self.rungs.len() < 2 {
            return Some(0);
        }
        let smallest = self.order().next()?;
        let largest = self.order().last()?;
        if rid == smallest {
            Some(0)
        } else if rid == largest {
            Some(1)
        } else {
            None
        }
    }

    /// Rids from the smallest picture up: by size once every size is known, else by place.
    fn order(&self) -> impl Iterator<Item = Rid> {
        let mut rungs = self.rungs.clone();
        if rungs.iter().all(|r| r.pixels.is_some()) {
            rungs.sort_by_key(|r| (r.pixels, r.place));
        } else {
            rungs.sort_by_key(|r| r.place);
        }
        rungs.into_iter().map(|r| r.rid)
    }

    /// Whether the publisher sends simulcast (two rids or more seen).
    pub(super) fn is_simulcast(&self) -> bool {
        self.rungs.len() >= 2
    }

    /// The rid that travels as `encoding`, if the publisher sends simulcast.
    pub(super) fn rid_of(&self, encoding: u8) -> Option<Rid> {
        if self.rungs.len() < 2 {
            return self.rungs.first().map(|r| r.rid).filter(|_| encoding == 0);
        }
        if encoding == 0 {
            self.order().next()
        } else {
            self.order().last()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_picture_is_encoding_zero_whatever_the_names_and_order() {
        let mut l = RidLadder::default();
        let (h, q, m) = (Rid::from("h"), Rid::from("q"), Rid::from("m"));
        // Before any size is known, the description's order ranks them.
        assert_eq!(l.encoding_of(h, None, Some(0)), Some(0));
        assert_eq!(l.encoding_of(q, None, Some(2)), Some(1));
        // Sizes override it once both are known: h is the large one.
        assert_eq!(l.encoding_of(h, Some((640, 480)), Some(0)), Some(0));
        assert_eq!(l.encoding_of(q, Some((160, 120)), Some(2)), Some(0));
        assert_eq!(l.encoding_of(h, None, Some(0)), Some(1));
        // A third, middle encoding is not carried; the ends keep their numbers (by place
        // until its size is known too).
        assert_eq!(l.encoding_of(m, None, Some(1)), None);
        assert_eq!(l.encoding_of(q, None, Some(2)), Some(1));
        assert_eq!(l.encoding_of(m, Some((320, 240)), Some(1)), None);
        assert_eq!(l.encoding_of(h, None, Some(0)), Some(1));
        assert_eq!(l.rid_of(0), Some(q));
        assert_eq!(l.rid_of(1), Some(h));
        assert_eq!(l.rungs.len(), 3);
        assert!(l.is_simulcast());
        // One rid alone is encoding 0; the table is bounded.
        let mut l = RidLadder::default();
        assert_eq!(l.encoding_of(h, None, None), Some(0));
        assert_eq!((l.rid_of(0), l.rid_of(1)), (Some(h), None));
        assert!(!l.is_simulcast());
        for n in 0..20 {
            l.encoding_of(Rid::from(format!("r{n}").as_str()), None, None);
        }
        assert_eq!(l.rungs.len(), MAX_RIDS);
    }
}
