//! Fitting a message into a robot's size limit: whole notices while they fit, then whole lines of
//! the first one if even it does not, and a closing "… (+N more)" for what was left out (the
//! notices not shown and those folded before, or the lines of the one notice cut). Sizes are
//! UTF-8 bytes (a limit in characters is met by meeting it in bytes); a line is never split inside
//! a character.

/// The lines of each notice kept, then, if anything was left out, one block with the closing
/// line. A line costs its bytes plus `overhead` (the markup or JSON around it).
pub(super) fn fit(
    blocks: Vec<Vec<String>>,
    folded: usize,
    limit: usize,
    overhead: usize,
    more: impl Fn(usize) -> String,
) -> Vec<Vec<String>> {
    let cost = |s: &String| s.len() + overhead;
    let whole: usize = blocks.iter().flatten().map(cost).sum();
    if folded == 0 && whole <= limit {
        return blocks;
    }
    let total = blocks.len();
    let budget = limit.saturating_sub(more(total + folded).len() + overhead);
    let mut used = 0;
    let mut kept: Vec<Vec<String>> = Vec::new();
    let mut lines_left_out = 0;
    for block in blocks {
        let c: usize = block.iter().map(cost).sum();
        if used + c <= budget {
            used += c;
            kept.push(block);
            continue;
        }
        if kept.is_empty() {
            let (part, left_out) = cut_lines(block, budget, overhead);
            lines_left_out = left_out;
            kept.push(part);
        }
        break;
    }
    let left_out = total - kept.len() + folded + lines_left_out;
    if left_out > 0 {
        kept.push(vec![more(left_out)]);
    }
    kept
}

/// The lines of `block` that fit in `budget`, the first one cut if it alone does not; and how
/// many lines were left out.
fn cut_lines(block: Vec<String>, budget: usize, overhead: usize) -> (Vec<String>, usize) {
    let count = block.len();
    let mut used = 0;
    let mut part = Vec::new();
    for line in block {
        if used + line.len() + overhead > budget {
            if part.is_empty() {
                part.push(cut(&line, budget.saturating_sub(overhead)));
            }
            break;
        }
        used += line.len() + overhead;
        part.push(line);
    }
    let left_out = count - part.len();
    (part, left_out)
}

/// `line` cut to at most `max` bytes at a character boundary, ending in "…".
pub(super) fn cut(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn more(n: usize) -> String {
        format!("… (+{n} more)")
    }

    fn block(n: usize, line: &str) -> Vec<String> {
        vec![line.to_string(); n]
    }

    #[test]
    fn what_fits_is_left_whole() {
        let blocks = vec![block(2, "ab"), block(1, "cd")];
        assert_eq!(fit(blocks.clone(), 0, 6, 0, more), blocks);
    }

    #[test]
    fn whole_notices_are_dropped_from_the_end_and_counted_with_the_folded() {
        let blocks = vec![block(2, "aaaa"), block(2, "bbbb"), block(2, "cccc")];
        let out = fit(blocks, 4, 30, 1, more);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0], block(2, "aaaa"));
        assert_eq!(out[1], vec!["… (+6 more)".to_string()]);
        let size: usize = out.iter().flatten().map(|l| l.len() + 1).sum();
        assert!(size <= 30);
    }

    #[test]
    fn one_notice_too_big_is_cut_by_lines_and_chinese_is_never_split() {
        let line = "厂商 alpha 在所有地区故障".repeat(20);
        let out = fit(
            vec![vec![line.clone(), line.clone(), line]],
            0,
            600,
            1,
            more,
        );
        let size: usize = out.iter().flatten().map(|l| l.len() + 1).sum();
        assert!(size <= 600, "{size}");
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[1], vec!["… (+2 more)".to_string()]);
        let one = "故障".repeat(100);
        let out = fit(vec![vec![one]], 0, 50, 0, more);
        assert!(out[0][0].ends_with('…') && out[0][0].len() <= 50, "{out:?}");
    }

    #[test]
    fn a_cut_ends_on_a_character_boundary() {
        for max in 3..20 {
            let s = cut("一二三四五六七八九十", max);
            assert!(s.len() <= max, "{max}: {s}");
        }
        assert_eq!(cut("abc", 3), "abc");
    }
}
