//! HL7 message structures and the segment groups of a message.
//!
//! Owns reading `mappings/structures.txt` (imported from the IG's message
//! sheets) and arranging a message's segments into group instances
//! (ORU_R01's `ORDER_OBSERVATION`, `OBSERVATION`...), so mapping rules can
//! iterate over groups. The arranging is lenient, as real feeds need:
//! missing required segments are tolerated, and segments the structure
//! does not place (Z-segments, out-of-order ones) stay in the group that
//! is open when they arrive, so nothing is lost. A known segment that no
//! slot would take (an OBX with no OBR before it) opens, on a second pass,
//! the nearest group it would open had the group's missing required lead
//! segments been sent. Every group instance
//! covers a contiguous run of segments.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

/// One slot of a structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A segment.
    Seg {
        /// Segment id.
        id: String,
        /// May be absent.
        opt: bool,
        /// May repeat.
        rep: bool,
    },
    /// A group.
    Group {
        /// Group name.
        name: String,
        /// May be absent.
        opt: bool,
        /// May repeat.
        rep: bool,
        /// Its slots.
        items: Vec<Item>,
        /// Every segment id in it, any depth (computed once at load).
        ids: Arc<HashSet<String>>,
        /// The segment ids in it directly, not in a nested group.
        direct: Arc<HashSet<String>>,
    },
}

/// The segment ids of a list of slots that are segments (not groups).
fn direct_ids(items: &[Item]) -> HashSet<String> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Seg { id, .. } => Some(id.clone()),
            Item::Group { .. } => None,
        })
        .collect()
}

impl Item {
    fn rep(&self) -> bool {
        match self {
            Item::Seg { rep, .. } | Item::Group { rep, .. } => *rep,
        }
    }

    fn opt(&self) -> bool {
        match self {
            Item::Seg { opt, .. } | Item::Group { opt, .. } => *opt,
        }
    }

    /// Can a segment with this id start this slot?
    fn starts_with(&self, id: &str) -> bool {
        self.starts(id, false)
    }

    /// Could a segment with this id start this slot if the slot's required
    /// leading segments (its own or its nested groups') were missing?
    /// `ORDER_OBSERVATION(COMMON_ORDER?(ORC ...) OBR ... OBSERVATION*(OBX
    /// ...))` can, for an OBX, when its OBR is missing; `PATIENT_RESULT(
    /// PATIENT?(PID ... VISIT?(PV1 ...)) ...)` can, for a PV1, when there is
    /// no PID. A required nested group is never skipped.
    fn starts_past_missing(&self, id: &str) -> bool {
        self.starts(id, true)
    }

    /// Can `id` start this slot, skipping its optional leading slots (and,
    /// `past_missing`, its required leading segments)?
    fn starts(&self, id: &str, past_missing: bool) -> bool {
        match self {
            Item::Seg { id: s, .. } => s == id,
            Item::Group { items, .. } => {
                for it in items {
                    if it.starts(id, past_missing) {
                        return true;
                    }
                    let skippable = it.opt() || (past_missing && matches!(it, Item::Seg { .. }));
                    if !skippable {
                        return false;
                    }
                }
                false
            }
        }
    }

    /// Does this slot's first slot begin with segment `id` (not only after
    /// optional slots it may skip)? `ORDER(ORC ...)` leads with ORC;
    /// `PRIOR_RESULT(PATIENT_PRIOR?(PID) ... ORDER_PRIOR+(ORC ...))` does not.
    fn leads_with(&self, id: &str) -> bool {
        match self {
            Item::Seg { id: s, .. } => s == id,
            Item::Group { items, .. } => items.first().is_some_and(|f| f.leads_with(id)),
        }
    }

    /// True when this slot holds segment `id`, at any depth.
    fn holds(&self, id: &str) -> bool {
        match self {
            Item::Seg { id: s, .. } => s == id,
            Item::Group { ids, .. } => ids.contains(id),
        }
    }

    /// Every segment id in this slot, recursively.
    fn segment_ids(&self, out: &mut HashSet<String>) {
        match self {
            Item::Seg { id, .. } => {
                out.insert(id.clone());
            }
            Item::Group { items, .. } => items.iter().for_each(|i| i.segment_ids(out)),
        }
    }

    /// Every group name in this slot, recursively.
    fn group_names(&self, out: &mut Vec<String>) {
        if let Item::Group { name, items, .. } = self {
            out.push(name.clone());
            items.iter().for_each(|i| i.group_names(out));
        }
    }
}

/// All known structures.
#[derive(Clone, Debug, Default)]
pub struct Structures {
    map: HashMap<String, Vec<Item>>,
}

fn parse_items(tokens: &[String], i: &mut usize) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    while *i < tokens.len() {
        let t = &tokens[*i];
        if t == ")" {
            return Ok(out);
        }
        *i += 1;
        let (name, suffix) = match t.strip_suffix(['?', '*', '+']) {
            Some(n) => (n.to_string(), t.chars().last().unwrap_or(' ')),
            None => (t.clone(), ' '),
        };
        let (opt, rep) = match suffix {
            '?' => (true, false),
            '*' => (true, true),
            '+' => (false, true),
            _ => (false, false),
        };
        if tokens.get(*i).map(String::as_str) == Some("(") {
            *i += 1;
            let items = parse_items(tokens, i)?;
            if tokens.get(*i).map(String::as_str) != Some(")") {
                return Err(format!("group {name} is not closed"));
            }
            *i += 1;
            let mut ids = HashSet::default();
            items.iter().for_each(|it| it.segment_ids(&mut ids));
            let direct = Arc::new(direct_ids(&items));
            out.push(Item::Group {
                name,
                opt,
                rep,
                items,
                ids: Arc::new(ids),
                direct,
            });
        } else {
            out.push(Item::Seg { id: name, opt, rep });
        }
    }
    Ok(out)
}

impl Structures {
    /// Reads `NAME = items` lines.
    pub fn parse(text: &str) -> Result<Structures, (usize, String)> {
        let mut map = HashMap::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, body)) = line.split_once('=') else {
                return Err((n + 1, "expected NAME = segments".into()));
            };
            let spaced = body.replace('(', " ( ").replace(')', " ) ");
            let tokens: Vec<String> = spaced.split_whitespace().map(String::from).collect();
            let mut i = 0;
            let items = parse_items(&tokens, &mut i).map_err(|e| (n + 1, e))?;
            if i != tokens.len() {
                return Err((n + 1, "unbalanced parentheses".into()));
            }
            map.insert(name.trim().to_string(), items);
        }
        Ok(Structures { map })
    }

    /// A structure by name (`ORU_R01`).
    pub fn get(&self, name: &str) -> Option<&[Item]> {
        self.map.get(name).map(Vec::as_slice)
    }

    /// The group names a structure has.
    pub fn group_names(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(items) = self.map.get(name) {
            items.iter().for_each(|i| i.group_names(&mut out));
        }
        out
    }
}

/// One group instance in a message.
#[derive(Clone, Debug)]
pub struct Inst {
    /// Group name (the structure's name for the root).
    pub name: String,
    /// Enclosing instance.
    pub parent: Option<usize>,
    /// Nested instances, in order.
    pub children: Vec<usize>,
    /// First segment index (inclusive).
    pub start: usize,
    /// Last segment index (exclusive).
    pub end: usize,
    /// Segment ids the structure allows in this group (any depth); `None`
    /// for the root (everything).
    pub allows: Option<Arc<HashSet<String>>>,
    /// Segment ids the structure places in this group itself, not in a
    /// nested group; `None` for the root (a path from the message itself
    /// means every such segment).
    pub direct: Option<Arc<HashSet<String>>>,
}

/// What one arranging pass reads: the message's segment ids, the
/// structure's top slots (what it knows), and the positions that may open a
/// group past its missing lead.
#[derive(Clone, Copy)]
struct Input<'a> {
    ids: &'a [&'a str],
    known: &'a [Item],
    past_missing: &'a [usize],
}

/// A message's segments arranged into groups; instance 0 is the message.
#[derive(Clone, Debug)]
pub struct Grouping {
    /// Every instance; 0 is the root.
    pub insts: Vec<Inst>,
}

impl Grouping {
    /// Arranges segments (given by id) by a structure; with no structure,
    /// everything is in the root.
    pub fn build(ids: &[&str], structure: Option<&[Item]>, name: &str) -> Grouping {
        let mut g = Grouping {
            insts: vec![Inst {
                name: name.to_string(),
                parent: None,
                children: Vec::new(),
                start: 0,
                end: ids.len(),
                allows: None,
                direct: None,
            }],
        };
        let Some(items) = structure else {
            return g;
        };
        let unplaced = g.arrange(items, ids, &[]);
        if unplaced.is_empty() {
            return g;
        }
        // Known segments nothing took (an OBX with no OBR before it, as ICU
        // device feeds send): arrange again from the root alone, letting
        // those open the group they would open had its missing lead been
        // sent, nearest first.
        g.insts.truncate(1);
        g.insts[0].children.clear();
        g.arrange(items, ids, &unplaced);
        g
    }

    /// Arranges `ids` under the root; returns the positions of segments the
    /// structure knows but no slot took (they stay in the root). A position
    /// in `past_missing` may open a group past its missing required lead.
    fn arrange(&mut self, items: &[Item], ids: &[&str], past_missing: &[usize]) -> Vec<usize> {
        let mut unplaced = Vec::new();
        let mut pos = 0;
        while pos < ids.len() {
            let before = pos;
            let input = Input {
                ids,
                known: items,
                past_missing,
            };
            self.fill(0, items, &input, &mut pos, &[]);
            if pos == before {
                // Nothing in the structure takes it: it stays in the root.
                if items.iter().any(|k| k.holds(ids[pos])) {
                    unplaced.push(pos);
                }
                pos += 1;
            }
        }
        unplaced
    }

    /// Fills instance `inst` from `items`; `outer` are the repeating groups
    /// it is inside (innermost last).
    fn fill(
        &mut self,
        inst: usize,
        items: &[Item],
        input: &Input<'_>,
        pos: &mut usize,
        outer: &[&Item],
    ) {
        let Input {
            ids,
            known,
            past_missing,
        } = *input;
        let mut slot = 0;
        let mut filled = vec![false; items.len()];
        while *pos < ids.len() {
            let id = ids[*pos];
            let mut found = None;
            for (j, item) in items.iter().enumerate().skip(slot) {
                if filled[j] && !item.rep() {
                    continue;
                }
                if item.starts_with(id) {
                    found = Some(j);
                    break;
                }
            }
            if found.is_none() && past_missing.contains(pos) {
                found = items
                    .iter()
                    .enumerate()
                    .skip(slot)
                    .find(|(j, item)| (!filled[*j] || item.rep()) && item.starts_past_missing(id))
                    .map(|(j, _)| j);
            }
            let Some(j) = found else {
                // Unknown here. A segment the structure does not know at all
                // (a Z-segment, a local one) stays in this group; a known
                // one that does not fit here ends the group.
                if !known.iter().any(|k| k.holds(id)) && inst != 0 {
                    *pos += 1;
                    continue;
                }
                return;
            };
            match &items[j] {
                Item::Seg { .. } => *pos += 1,
                group @ Item::Group {
                    name,
                    items: sub,
                    ids: allows,
                    direct,
                    rep,
                    ..
                } => {
                    // A nested group this segment would open only past its
                    // optional first slots (an OML's PRIOR_RESULT, opened by
                    // the ORC of its ORDER_PRIOR) gives way to an enclosing
                    // repeating group that begins with it: a second ORC
                    // after an order's OBR is the next ORDER, not a prior
                    // result (HL7 v2 leaves this open; real feeds mean the
                    // next order).
                    if !group.leads_with(id) && outer.iter().any(|o| o.leads_with(id)) {
                        return;
                    }
                    let mut inner: Vec<&Item> = outer.to_vec();
                    if *rep {
                        inner.push(group);
                    }
                    let child = self.insts.len();
                    let allows = Some(allows.clone());
                    self.insts.push(Inst {
                        name: name.clone(),
                        parent: Some(inst),
                        children: Vec::new(),
                        start: *pos,
                        end: *pos,
                        allows,
                        direct: Some(direct.clone()),
                    });
                    self.insts[inst].children.push(child);
                    self.fill(child, sub, input, pos, &inner);
                    self.insts[child].end = *pos;
                }
            }
            filled[j] = true;
            slot = j;
        }
    }

    /// Instances named `name` at or below `scope`, outermost first (an
    /// instance inside another of the same name is not listed separately).
    pub fn find(&self, scope: usize, name: &str) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.insts[scope].children.iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            if self.insts[i].name == name {
                out.push(i);
            } else {
                stack.extend(self.insts[i].children.iter().rev().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "ORU_R01 = MSH SFT* PATIENT_RESULT+(PATIENT?(PID PD1? NTE* VISIT?(PV1 PV2?)) ORDER_OBSERVATION+(ORC? OBR NTE* OBSERVATION*(OBX NTE*) SPECIMEN*(SPM OBX*))) DSC?\n";

    #[test]
    fn groups_an_oru() {
        let s = Structures::parse(TEXT).unwrap();
        let ids = [
            "MSH", "PID", "NTE", "PV1", "ORC", "OBR", "NTE", "OBX", "NTE", "OBX", "SPM", "OBX",
            "OBR", "OBX", "ZZ1",
        ];
        let g = Grouping::build(&ids, s.get("ORU_R01"), "ORU_R01");
        let orders = g.find(0, "ORDER_OBSERVATION");
        assert_eq!(orders.len(), 2);
        let o1 = &g.insts[orders[0]];
        assert_eq!((o1.start, o1.end), (4, 12));
        let obs = g.find(orders[0], "OBSERVATION");
        assert_eq!(obs.len(), 2);
        assert_eq!((g.insts[obs[0]].start, g.insts[obs[0]].end), (7, 9));
        let spm = g.find(orders[0], "SPECIMEN");
        assert_eq!((g.insts[spm[0]].start, g.insts[spm[0]].end), (10, 12));
        let o2 = &g.insts[orders[1]];
        assert_eq!(
            (o2.start, o2.end),
            (12, 15),
            "the Z-segment stays in the open group"
        );
        let pat = g.find(0, "PATIENT");
        assert_eq!((g.insts[pat[0]].start, g.insts[pat[0]].end), (1, 4));
        assert!(s.group_names("ORU_R01").contains(&"SPECIMEN".to_string()));
    }

    #[test]
    fn a_second_order_is_an_order_not_a_prior_result() {
        let s = Structures::parse(
            "OML_O21 = MSH PATIENT?(PID) ORDER+(ORC TIMING*(TQ1) OBSERVATION_REQUEST?(OBR OBSERVATION*(OBX) PRIOR_RESULT*(PATIENT_PRIOR?(PID) ORDER_PRIOR+(ORC OBR OBSERVATION_PRIOR+(OBX)))))\n",
        )
        .unwrap();
        let ids = [
            "MSH", "PID", "ORC", "OBR", "OBX", "ORC", "OBR", "ORC", "TQ1", "OBR",
        ];
        let g = Grouping::build(&ids, s.get("OML_O21"), "OML_O21");
        let orders: Vec<(usize, usize)> = g
            .find(0, "ORDER")
            .iter()
            .map(|o| (g.insts[*o].start, g.insts[*o].end))
            .collect();
        assert_eq!(orders, [(2, 5), (5, 7), (7, 10)]);
        assert!(g.find(0, "PRIOR_RESULT").is_empty());
        // A prior result that says so (its PID first) is one.
        let ids = ["MSH", "PID", "ORC", "OBR", "PID", "ORC", "OBR", "OBX"];
        let g = Grouping::build(&ids, s.get("OML_O21"), "OML_O21");
        assert_eq!(g.find(0, "ORDER").len(), 1);
        assert_eq!(g.find(0, "PRIOR_RESULT").len(), 1);
    }

    #[test]
    fn a_result_without_its_request_opens_the_order_it_belongs_to() {
        let s = Structures::parse(TEXT).unwrap();
        // An ICU device feed: OBX straight after PV1, no OBR.
        let ids = ["MSH", "PID", "PV1", "OBX", "OBX", "ZXX", "OBX"];
        let g = Grouping::build(&ids, s.get("ORU_R01"), "ORU_R01");
        let orders = g.find(0, "ORDER_OBSERVATION");
        assert_eq!(orders.len(), 1);
        assert_eq!((g.insts[orders[0]].start, g.insts[orders[0]].end), (3, 7));
        assert_eq!(g.find(orders[0], "OBSERVATION").len(), 3);
        // ...in the same PATIENT_RESULT as its patient.
        let results = g.find(0, "PATIENT_RESULT");
        assert_eq!(results.len(), 1);
        assert_eq!((g.insts[results[0]].start, g.insts[results[0]].end), (1, 7));
        // A message the structure reads as it is arranges as before.
        let ids = ["MSH", "PID", "OBR", "OBX", "OBX"];
        let g = Grouping::build(&ids, s.get("ORU_R01"), "ORU_R01");
        assert_eq!(g.find(0, "OBSERVATION").len(), 2);
        // A required nested group is never skipped to place a segment.
        let s = Structures::parse("X = MSH A+(B(C) D*(E))\n").unwrap();
        let g = Grouping::build(&["MSH", "E"], s.get("X"), "X");
        assert!(g.find(0, "A").is_empty());
    }

    #[test]
    fn lenient_with_missing_and_unknown() {
        let s = Structures::parse(TEXT).unwrap();
        // No PID, no OBR: still grouped; unknown segments stay at the root.
        let ids = ["MSH", "ORC", "OBX", "XYZ", "OBX"];
        let g = Grouping::build(&ids, s.get("ORU_R01"), "ORU_R01");
        assert_eq!(g.find(0, "OBSERVATION").len(), 2);
        assert!(Structures::parse("A = B(C").is_err());
    }
}
