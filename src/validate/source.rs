//! Positions, excerpts and the checks that run on the text before it is parsed.

use std::cell::OnceCell;

use ruff_python_ast::token::TokenKind;
use ruff_python_parser::Mode;
use ruff_python_parser::lexer::lex;

/// Byte offsets of line starts. Python ends a line at `\n`, `\r\n` or a lone `\r`.
///
/// The table is built on first use: a strategy without violations or imports needs none.
pub struct Lines<'a> {
    pub text: &'a str,
    starts: OnceCell<Vec<usize>>,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            starts: OnceCell::new(),
        }
    }

    fn starts(&self) -> &[usize] {
        self.starts.get_or_init(|| line_starts(self.text))
    }

    /// 1-based line and 1-based column (counted in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let starts = self.starts();
        let line = match starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (to_u32(line + 1), to_u32(col + 1))
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line(&self, line: u32) -> Option<&'a str> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        let starts = self.starts();
        let start = *starts.get(index)?;
        let end = starts.get(index + 1).copied().unwrap_or(self.text.len());
        let text = self.text.get(start..end)?;
        Some(text.trim_end_matches(['\n', '\r']))
    }

    /// A short excerpt of `start..end`: its first line, at most `MAX_EXCERPT_CHARS` characters.
    pub fn excerpt(&self, start: usize, end: usize) -> String {
        let start = start.min(self.text.len());
        let end = end.clamp(start, self.text.len());
        let Some(text) = self.text.get(start..end) else {
            return String::new();
        };
        let first = text.split(['\n', '\r']).next().unwrap_or("").trim_end();
        let mut out: String = first.chars().take(MAX_EXCERPT_CHARS).collect();
        if first.chars().count() > MAX_EXCERPT_CHARS || first.len() < text.trim_end().len() {
            out.push_str("...");
        }
        out
    }
}

/// The byte offset of each line's start. Text without `\r` (nearly all) is searched for
/// `\n` alone, eight bytes at a time.
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    let bytes = text.as_bytes();
    if !bytes.contains(&b'\r') {
        const LOW7: u64 = u64::from_le_bytes([0x7f; 8]);
        const NEWLINES: u64 = u64::from_le_bytes([b'\n'; 8]);
        let mut words = bytes.chunks_exact(8);
        let mut at = 0;
        for chunk in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            // The high bit of each byte of `found` says whether that byte is `\n`.
            let x = u64::from_le_bytes(word) ^ NEWLINES;
            let mut found = !((x & LOW7).wrapping_add(LOW7) | x | LOW7);
            while found != 0 {
                starts.push(at + found.trailing_zeros() as usize / 8 + 1);
                found &= found - 1;
            }
            at += 8;
        }
        let rest = words.remainder();
        starts.extend(
            (0..rest.len())
                .filter(|i| rest[*i] == b'\n')
                .map(|i| at + i + 1),
        );
        return starts;
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => starts.push(i + 1),
            b'\r' => {
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                starts.push(i + 1);
            }
            _ => {}
        }
        i += 1;
    }
    starts
}

/// Longest `text` excerpt in a violation, in characters.
pub const MAX_EXCERPT_CHARS: usize = 60;

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The encoding named by a PEP 263 declaration in the first two lines, with its byte
/// offset, if there is one that is not UTF-8. CPython decodes a file with that codec
/// (UTF-7 turns comments into code), so the text the validator sees would not be the
/// program that runs.
pub fn foreign_encoding(text: &str) -> Option<(usize, String)> {
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').take(2).enumerate() {
        let body = line.trim_start_matches(['\u{feff}', ' ', '\t', '\x0c']);
        if let Some(comment) = body.strip_prefix('#') {
            if let Some(name) = declared_encoding(comment) {
                let normal = name.to_ascii_lowercase().replace('_', "-");
                if normal != "utf-8" && normal != "utf8" {
                    return Some((offset, name));
                }
            }
        } else if index == 0 && !body.trim().is_empty() {
            // A declaration on line 2 counts only below a comment or blank line 1.
            return None;
        }
        offset += line.len();
    }
    None
}

fn declared_encoding(comment: &str) -> Option<String> {
    let at = comment.find("coding")?;
    let rest = &comment[at + "coding".len()..];
    let rest = rest.strip_prefix([':', '='])?;
    let name: String = rest
        .trim_start_matches([' ', '\t'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The deepest syntax tree the validator accepts. CPython itself gives up near 200 nested
/// brackets and around a thousand chained operators; honest code stays far below both. The
/// bound keeps the parser and the checker off the end of the stack on hostile input.
pub const MAX_NESTING: usize = 200;

/// An upper bound of the syntax-tree depth of `source` (lexed in `mode`): the offset where
/// it first exceeds [`MAX_NESTING`], if it does.
///
/// Every token that can add a level (an operator, a dot, a keyword such as `not`, `lambda`
/// or `if`, a closing bracket) counts one; a comma closes the running count of its
/// bracket level, except inside a lambda's parameters; a newline closes the statement.
/// Indentation counts two per level and each `elif` of a chain one (an `elif` is an `if`
/// nested in the `else` of the one before). The replacement fields of f-strings are
/// tokens like any other, so their brackets and operators count too.
///
/// The check runs on the lexer alone, before the parser builds (and later drops,
/// recursively) a tree whose depth is bounded only by the length of the text. Ruff's
/// lexer hands out token kinds but not their offsets, so the offset is found by bisecting
/// the prefixes of the text; only text over the bound pays for that.
pub fn nesting_exceeded(source: &str, mode: Mode) -> Option<usize> {
    if !exceeds(source, mode) {
        return None;
    }
    // The shortest prefix that already exceeds the bound ends inside the token that did.
    let (mut low, mut high) = (0usize, source.len());
    while high - low > 1 {
        let mut mid = low + (high - low) / 2;
        while mid > low && !source.is_char_boundary(mid) {
            mid -= 1;
        }
        if mid == low {
            break;
        }
        if exceeds(&source[..mid], mode) {
            high = mid;
        } else {
            low = mid;
        }
    }
    let start = source
        .get(..high)
        .and_then(|prefix| prefix.char_indices().next_back())
        .map_or(0, |(at, _)| at);
    Some(start)
}

fn exceeds(source: &str, mode: Mode) -> bool {
    // Per open bracket: the count of that level and the lambdas awaiting their colon.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut count = 0usize;
    let mut lambdas = 0usize;
    let mut outer = 0usize; // sum of the counts of enclosing levels
    // Per indentation level: the length of the `elif` chain running at that level.
    let mut elifs: Vec<usize> = vec![0];
    let mut elif_total = 0usize;
    let mut line_start = true;
    let mut lexer = lex(source, mode);
    loop {
        let tok = lexer.next_token();
        if tok == TokenKind::EndOfFile {
            return false;
        }
        let trivia = matches!(
            tok,
            TokenKind::Indent
                | TokenKind::Dedent
                | TokenKind::Newline
                | TokenKind::NonLogicalNewline
                | TokenKind::Comment
        );
        if line_start && !trivia {
            if !matches!(tok, TokenKind::Elif | TokenKind::Else)
                && let Some(run) = elifs.last_mut()
            {
                elif_total -= *run;
                *run = 0;
            }
            line_start = false;
        }
        // Whether the token raised the bound: only then can it newly exceed it (every other
        // token keeps it or lowers it), so only then is it compared.
        let raised = match tok {
            TokenKind::Lpar | TokenKind::Lsqb | TokenKind::Lbrace => {
                stack.push((count, lambdas));
                outer += count + 1;
                count = 0;
                lambdas = 0;
                true
            }
            TokenKind::Rpar | TokenKind::Rsqb | TokenKind::Rbrace => {
                if let Some((c, l)) = stack.pop() {
                    outer = outer.saturating_sub(c + 1);
                    count = c + 1;
                    lambdas = l;
                }
                false
            }
            TokenKind::Comma if lambdas == 0 => {
                count = 0;
                false
            }
            TokenKind::Colon if lambdas > 0 => {
                lambdas -= 1;
                false
            }
            TokenKind::Lambda => {
                lambdas += 1;
                count += 1;
                true
            }
            TokenKind::Newline | TokenKind::Semi => {
                stack.clear();
                count = 0;
                lambdas = 0;
                outer = 0;
                line_start = true;
                false
            }
            TokenKind::Indent => {
                elifs.push(0);
                line_start = true;
                true
            }
            TokenKind::Dedent => {
                if elifs.len() > 1 {
                    elif_total -= elifs.pop().unwrap_or(0);
                }
                line_start = true;
                false
            }
            TokenKind::Elif => {
                if let Some(run) = elifs.last_mut() {
                    *run += 1;
                    elif_total += 1;
                }
                true
            }
            TokenKind::Name
            | TokenKind::Int
            | TokenKind::Float
            | TokenKind::Complex
            | TokenKind::String
            | TokenKind::FStringStart
            | TokenKind::FStringMiddle
            | TokenKind::FStringEnd
            | TokenKind::TStringStart
            | TokenKind::TStringMiddle
            | TokenKind::TStringEnd
            | TokenKind::Comment
            | TokenKind::NonLogicalNewline
            // A lexical error (also where a prefix cuts a token) builds no tree.
            | TokenKind::Unknown
            | TokenKind::Comma
            | TokenKind::Colon
            | TokenKind::False
            | TokenKind::None
            | TokenKind::True
            | TokenKind::Ellipsis
            | TokenKind::Pass
            | TokenKind::Break
            | TokenKind::Continue => false,
            _ => {
                count += 1;
                true
            }
        };
        if raised && outer + count + 2 * (elifs.len() - 1) + elif_total > MAX_NESTING {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_and_all_line_endings() {
        let lines = Lines::new("a\r\nｅx\rb\nc");
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(3), (2, 1));
        assert_eq!(lines.position(6), (2, 2));
        assert_eq!(lines.position(8), (3, 1));
        assert_eq!(lines.position(10), (4, 1));
        assert_eq!(lines.line(2), Some("ｅx"));
    }

    #[test]
    fn line_starts_with_and_without_carriage_returns() {
        for text in [
            "",
            "\n",
            "a\nbb\nccc\n",
            "no newline at the end",
            "exactly8\nthen sixteen....\n\n\n\n\n\n\n\n\nx",
            "a\r\nb\rc\nd",
        ] {
            let mut expected = vec![0];
            let bytes = text.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                let lone_cr = *b == b'\r' && bytes.get(i + 1) != Some(&b'\n');
                if *b == b'\n' || lone_cr {
                    expected.push(i + 1);
                }
            }
            assert_eq!(line_starts(text), expected, "{text:?}");
        }
    }

    #[test]
    fn encoding_declarations() {
        assert!(foreign_encoding("# -*- coding: utf-8 -*-\n").is_none());
        assert!(foreign_encoding("#!/usr/bin/env python\n# coding=utf_7\n").is_some());
        assert!(foreign_encoding("# vim: set fileencoding=latin-1 :\n").is_some());
        assert!(foreign_encoding("x = 1\n# coding: utf-7\n").is_none());
    }
}
