//! Field-level validation failures, each with a JSON pointer to the bad field.

use std::fmt;

/// One bad field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer into the request body (`/redirect_uris/0`), or a query parameter name.
    pub pointer: String,
    /// A short machine-readable code (`required`, `invalid_value`, `too_long`, ...).
    pub code: &'static str,
    /// A sentence for a person.
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            code,
            message: message.into(),
        }
    }
}

/// Every bad field of one request; never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was pushed.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.pointer, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

/// Unicode general category Cf (format characters), Unicode 15.1: soft hyphen, Arabic number
/// marks, zero-width spaces and joiners, bidirectional embeddings, overrides and isolates, word
/// joiner and invisible operators, byte order mark, interlinear annotation, and tags. None
/// belongs in a name a user reads to decide whom to trust.
const FORMAT_CHARS: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Is `c` a format character (general category Cf)?
pub fn is_format_char(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_CHARS
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Characters that draw nothing but are letters or symbols, not spaces, so that they pass where
/// a blank name would not: the Hangul fillers and the blank Braille pattern. A name padded with
/// them pushes what follows it on the consent page out of place, or looks empty.
pub fn is_blank_filler(c: char) -> bool {
    matches!(
        c,
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
    )
}

/// Check marks, which the consent page draws beside a client the operator verified: a name
/// holding one can read as verified ("Acme ✓ Verified").
pub fn is_check_mark(c: char) -> bool {
    matches!(
        c,
        '\u{237B}'
            | '\u{2611}'
            | '\u{2705}'
            | '\u{2713}'
            | '\u{2714}'
            | '\u{10102}'
            | '\u{1F5F8}'
            | '\u{1F5F9}'
            | '\u{1FBB1}'
    )
}

/// The most spaces a name may put in a row (any space character: a run of no-break or wide
/// spaces pushes what follows the name out of place as padding would).
pub const MAX_SPACE_RUN: usize = 2;

/// Does `s` hold more than [`MAX_SPACE_RUN`] space characters in a row? Combining marks
/// between them (a grapheme joiner, a variation selector) draw nothing and do not end the run.
pub fn has_long_space_run(s: &str) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    let mut run = 0;
    for c in s.chars() {
        if run > 0 && c.general_category_group() == GeneralCategoryGroup::Mark {
            continue;
        }
        if c.is_whitespace() {
            run += 1;
            if run > MAX_SPACE_RUN {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// The most combining marks a name may put on one letter. Written languages put at most two
/// or three on a letter (Vietnamese `ệ` decomposed is `e` with two; Thai a vowel and a tone
/// mark); three leaves room.
pub const MAX_STACKED_MARKS: usize = 3;

/// Does `s` pile more than [`MAX_STACKED_MARKS`] combining marks (nonspacing or enclosing,
/// variation selectors included) on one character, or start with a mark? Either draws over the
/// text around a name on the consent page.
pub fn has_stacked_marks(s: &str) -> bool {
    use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
    let stacking = |c: char| {
        matches!(
            c.general_category(),
            GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
        )
    };
    if s.chars()
        .next()
        .is_some_and(|c| c.general_category_group() == GeneralCategoryGroup::Mark)
    {
        return true;
    }
    let mut run = 0;
    for c in s.chars() {
        if stacking(c) {
            run += 1;
            if run > MAX_STACKED_MARKS {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{has_stacked_marks, is_format_char};

    #[test]
    fn stacked_marks() {
        for ok in [
            "Acme",
            "Crème brûlée",
            "Vie\u{0323}\u{0302}t",
            "a\u{0301}\u{0302}\u{0303}b",
            "\u{0E01}\u{0E34}\u{0E48}\u{0E07}",
            "\u{0936}\u{094D}\u{0930}\u{0940}\u{0902}",
            "I \u{2764}\u{FE0F} it",
        ] {
            assert!(!has_stacked_marks(ok), "{ok:?}");
        }
        for piled in [
            "a\u{0301}\u{0302}\u{0303}\u{0304}",
            "\u{0301}Acme",
            "Acme\u{1DC0}\u{1DC1}\u{20D0}\u{FE20}",
            // Variation selectors, Thai and Cyrillic marks, enclosing marks count too.
            "Acme\u{0301}\u{FE00}\u{0301}\u{FE00}",
            "Acme\u{0E49}\u{0E49}\u{0E49}\u{0E49}",
            "Acme\u{0483}\u{0484}\u{0485}\u{0489}",
            "\u{0E49}Acme",
            "\u{0903}Acme",
        ] {
            assert!(has_stacked_marks(piled), "{piled:?}");
        }
    }

    #[test]
    fn format_characters() {
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{200D}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{E0041}',
            '\u{061C}',
        ] {
            assert!(is_format_char(c), "{c:?}");
        }
        for c in [
            'a', 'é', '中', ' ', '\u{2010}', '\u{200A}', '\u{2070}', '😀',
        ] {
            assert!(!is_format_char(c), "{c:?}");
        }
    }
}
