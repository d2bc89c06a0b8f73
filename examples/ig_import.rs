//! Imports what the mappings need from the HL7 v2-to-FHIR IG spreadsheets:
//! the message structures (segment groups) from the message sheets, and the
//! vocabulary maps from the code-system sheets as FHIR ConceptMaps.
//!
//! `cargo run --example ig_import -- ../shared/corpus/v2-to-fhir-ig/mappings`
//!
//! Writes `mappings/structures.txt` and `mappings/vocabulary/ig/*.json`; both
//! are committed, so a clone builds without the spreadsheets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A minimal CSV reader: quoted fields, doubled quotes, newlines in quotes.
fn csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[derive(Debug)]
enum Item {
    Seg {
        id: String,
        opt: bool,
        rep: bool,
    },
    Group {
        name: String,
        opt: bool,
        rep: bool,
        items: Vec<Item>,
    },
}

fn suffix(opt: bool, rep: bool) -> &'static str {
    match (opt, rep) {
        (false, false) => "",
        (true, false) => "?",
        (false, true) => "+",
        (true, true) => "*",
    }
}

fn render(items: &[Item], out: &mut String) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match it {
            Item::Seg { id, opt, rep } => {
                out.push_str(id);
                out.push_str(suffix(*opt, *rep));
            }
            Item::Group {
                name,
                opt,
                rep,
                items,
            } => {
                out.push_str(name);
                out.push_str(suffix(*opt, *rep));
                out.push('(');
                render(items, out);
                out.push(')');
            }
        }
    }
}

fn segment_id(syntax: &str) -> Option<String> {
    let t: String = syntax
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    (t.len() == 3 && t.chars().next().is_some_and(|c| c.is_ascii_uppercase())).then_some(t)
}

fn structure(rows: &[Vec<String>]) -> Vec<Item> {
    let mut stack: Vec<(String, bool, bool, Vec<Item>)> =
        vec![("".into(), false, false, Vec::new())];
    let mut last: Option<(String, String)> = None;
    for r in rows.iter().skip(2) {
        let (ident, syntax) = (
            r.get(1).cloned().unwrap_or_default(),
            r.get(2).cloned().unwrap_or_default(),
        );
        if ident.trim().is_empty() {
            continue;
        }
        let key = (ident.clone(), syntax.clone());
        if last.as_ref() == Some(&key) {
            continue;
        }
        last = Some(key);
        // A group's end: `/PATH` with no segment. (The OML_O21 sheet writes
        // `/...PRIOR_RESULT.AL1` for the AL1 row inside PRIOR_RESULT: a
        // segment row, which must not close the group.)
        if ident.starts_with('/') && segment_id(&syntax).is_none() {
            if stack.len() > 1
                && let Some((name, opt, rep, items)) = stack.pop()
                && let Some(top) = stack.last_mut()
            {
                top.3.push(Item::Group {
                    name,
                    opt,
                    rep,
                    items,
                });
            }
            continue;
        }
        let opt = syntax.contains('[');
        let rep = syntax.contains('{');
        match segment_id(&syntax) {
            Some(id) => {
                if let Some(top) = stack.last_mut() {
                    // The same segment twice in a row is one slot described twice.
                    let repeat =
                        matches!(top.3.last(), Some(Item::Seg { id: last, .. }) if *last == id);
                    if !repeat {
                        top.3.push(Item::Seg { id, opt, rep });
                    }
                }
            }
            None => {
                let name = ident.rsplit('.').next().unwrap_or(&ident).to_string();
                stack.push((name, opt, rep, Vec::new()));
            }
        }
    }
    while stack.len() > 1 {
        if let Some((name, opt, rep, items)) = stack.pop()
            && let Some(top) = stack.last_mut()
        {
            top.3.push(Item::Group {
                name,
                opt,
                rep,
                items,
            });
        }
    }
    stack.pop().map(|s| s.3).unwrap_or_default()
}

fn map_name(file_stem: &str) -> String {
    let core = file_stem
        .trim_start_matches("HL7 Concept Map_ ")
        .trim_end_matches(" - Sheet1")
        .trim();
    core.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn concept_map(name: &str, rows: &[Vec<String>]) -> serde_json::Value {
    let mut groups: BTreeMap<(String, String), Vec<serde_json::Value>> = BTreeMap::new();
    for r in rows.iter().skip(2) {
        let g = |i: usize| r.get(i).map(|s| s.trim().to_string()).unwrap_or_default();
        let (code, display, system, target, tdisplay, tsystem) =
            (g(0), g(1), g(2), g(6), g(8), g(9));
        if code.is_empty() {
            continue;
        }
        let tdisplay = if tdisplay.is_empty() { g(7) } else { tdisplay };
        let mut el = serde_json::json!({"code": code});
        if !display.is_empty() {
            el["display"] = display.into();
        }
        if target.is_empty() {
            el["target"] = serde_json::json!([{"equivalence": "unmatched"}]);
        } else {
            let mut t = serde_json::json!({"code": target, "equivalence": "equivalent"});
            if !tdisplay.is_empty() {
                t["display"] = tdisplay.into();
            }
            el["target"] = serde_json::json!([t]);
        }
        groups.entry((system, tsystem)).or_default().push(el);
    }
    let group: Vec<serde_json::Value> = groups
        .into_iter()
        .map(|((s, t), elements)| {
            let mut g = serde_json::json!({"element": elements});
            if !s.is_empty() {
                g["source"] = s.into();
            }
            if !t.is_empty() {
                g["target"] = t.into();
            }
            g
        })
        .collect();
    serde_json::json!({
        "resourceType": "ConceptMap",
        "id": name.replace('_', "-").to_lowercase(),
        "url": format!("http://caduceus.dev/fhir/ConceptMap/{name}"),
        "name": name,
        "status": "active",
        "description": "Imported from the HL7 v2-to-FHIR IG code-system mapping sheet of the same name.",
        "group": group,
    })
}

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: ig_import <v2-to-fhir-ig/mappings folder>");
        return std::process::ExitCode::from(2);
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    // Structures.
    let mut out = String::from(
        "# HL7 v2 message structures (segment groups), imported from the HL7 v2-to-FHIR IG message sheets\n\
         # by `cargo run --example ig_import -- <IG mappings folder>`; DFT_P03 is ours (the IG has no sheet).\n\
         # ADT_A39 is ours too, from the v2.5.1 standard (merges; A18 and ADT_A30 have the same segments in one group).\n\
         # OML_O33 is ours, from the v2.5.1 standard (specimen-centric lab orders); it also reads OML_O35's layout\n\
         # (a container, SAC, before each group of orders: SPECIMEN_CONTAINER). RDE_O11 is ours, from the v2.5.1 standard.\n\
         # SEG required, SEG? optional, SEG+ repeating, SEG* optional repeating; GROUP(...) likewise.\n",
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("messages"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for f in &files {
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = stem
            .trim_start_matches("HL7 Message - FHIR R4_ ")
            .trim_end_matches(" - Sheet1")
            .trim()
            .to_string();
        // Two sheets describe their choice and resource groups in a way
        // the importer cannot follow, and one has none where it needs one;
        // their v2.5.1 structures are written here. ORM's pharmacy order
        // keeps the RXR (route) and RXC (components) that v2.3/v2.4 senders
        // send after RXO (v2.5 moved them to OMP), and order notes sent after
        // the order's diagnoses (DG1 then NTE) are the order's notes still.
        let fixed = match name.as_str() {
            "ORM_O01" => Some(
                "MSH NTE* PATIENT?(PID PD1? NTE* PATIENT_VISIT?(PV1 PV2?) INSURANCE*(IN1 IN2? IN3?) GT1? AL1*) ORDER+(ORC ORDER_DETAIL?(OBR? RQD? RQ1? RXO? RXR* RXC* ODS? ODT? NTE* CTD? DG1* NTE* OBSERVATION*(OBX NTE*)) FT1* CTI* BLG?)",
            ),
            // The two patients of a swap have no group around them in the
            // sheet; one per patient lets each one's PD1, PV2 and
            // observations be read with its PID and PV1.
            "ADT_A17" => Some(
                "MSH ARV* SFT* UAC? EVN PATIENT+(PID PD1? ARV* PV1 PV2? ARV* DB1* OBSERVATION*(OBX PRT*))",
            ),
            "SIU_S12" => Some(
                "MSH SCH TQ1* NTE* PATIENT*(PID PD1? PRT* PV1? PV2? OBX* DG1*) RESOURCES+(RGS SERVICE*(AIS NTE*) GENERAL_RESOURCE*(AIG NTE*) LOCATION_RESOURCE*(AIL NTE*) PERSONNEL_RESOURCE*(AIP NTE*))",
            ),
            _ => None,
        };
        let mut line = format!("{name} = ");
        match fixed {
            Some(f) => line.push_str(f),
            None => {
                let rows = csv(&std::fs::read_to_string(f).unwrap_or_default());
                render(&structure(&rows), &mut line);
            }
        }
        // v2.3.1 and v2.4 VXUs send RXA with no ORC (ORC became required in
        // v2.5); an RXA that cannot start an ORDER group would be read by no rule.
        if name == "VXU_V04" {
            line = line.replace("ORDER*(ORC ", "ORDER*(ORC? ");
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "DFT_P03 = MSH SFT* UAC? EVN PID PD1? PRT* ROL* VISIT?(PV1 PV2? PRT* ROL*) DB1* COMMON_ORDER*(ORC? PRT* TIMING_QUANTITY*(TQ1 TQ2*) ORDER?(OBR NTE* PRT*) OBSERVATION*(OBX NTE* PRT*)) FINANCIAL+(FT1 NTE* PRT* FINANCIAL_PROCEDURE*(PR1 ROL* PRT*) FINANCIAL_COMMON_ORDER*(ORC? PRT* FINANCIAL_TIMING_QUANTITY*(TQ1 TQ2*) FINANCIAL_ORDER?(OBR NTE* PRT*) FINANCIAL_OBSERVATION*(OBX NTE* PRT*))) DG1* DRG? GT1* INSURANCE*(IN1 IN2? IN3* ROL*) ACC?"
    );
    let _ = writeln!(
        out,
        "ADT_A39 = MSH SFT* UAC? EVN PATIENT+(PID PD1? MRG PV1?)"
    );
    let _ = writeln!(
        out,
        "OML_O33 = MSH SFT* UAC? NTE* PATIENT?(PID PD1? PRT* NTE* NK1* ARV* PATIENT_VISIT?(PV1 PV2? PRT*) INSURANCE*(IN1 IN2? IN3?) GT1? AL1*) SPECIMEN+(SPM SPECIMEN_OBSERVATION*(OBX PRT*) CONTAINER*(SAC) ORDER*(ORC PRT* TIMING*(TQ1 TQ2*) OBSERVATION_REQUEST?(OBR TCD? NTE* PRT* DG1* OBSERVATION*(OBX PRT* TCD? NTE*) PRIOR_RESULT*(PATIENT_PRIOR?(PID PD1?) PATIENT_VISIT_PRIOR?(PV1 PV2?) AL1* ORDER_PRIOR+(ORC OBR TIMING_PRIOR*(TQ1 TQ2*) NTE* OBSERVATION_PRIOR+(OBX NTE*)))) FT1* CTI* BLG?) SPECIMEN_CONTAINER*(SAC ORDER+(ORC PRT* TIMING*(TQ1 TQ2*) OBSERVATION_REQUEST?(OBR TCD? NTE* PRT* DG1* OBSERVATION*(OBX PRT* TCD? NTE*) PRIOR_RESULT*(PATIENT_PRIOR?(PID PD1?) PATIENT_VISIT_PRIOR?(PV1 PV2?) AL1* ORDER_PRIOR+(ORC OBR TIMING_PRIOR*(TQ1 TQ2*) NTE* OBSERVATION_PRIOR+(OBX NTE*)))) FT1* CTI* BLG?)))"
    );
    // RDE_O11 is ours, from the v2.5.1 standard (pharmacy encoded orders),
    // lenient where senders are: RXR may be missing, and notes may follow
    // the route and components as well as precede them (v2.3 wrote them last).
    let _ = writeln!(
        out,
        "RDE_O11 = MSH SFT* UAC? NTE* PATIENT?(PID PD1? NTE* PATIENT_VISIT?(PV1 PV2?) INSURANCE*(IN1 IN2? IN3?) GT1? AL1*) ORDER+(ORC TIMING*(TQ1 TQ2*) ORDER_DETAIL?(RXO NTE* RXR* COMPONENT?(RXC+ NTE*)) RXE TIMING_ENCODED*(TQ1 TQ2*) NTE* RXR* RXC* NTE* OBSERVATION*(OBX NTE*) FT1* BLG? CTI*)"
    );
    if let Err(e) = std::fs::write(root.join("structures.txt"), out) {
        eprintln!("structures.txt: {e}");
        return std::process::ExitCode::from(1);
    }
    // Vocabulary.
    let vocab = root.join("vocabulary/ig");
    let _ = std::fs::create_dir_all(&vocab);
    let mut n = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("codesystems"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for f in files {
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = map_name(&stem);
        let rows = csv(&std::fs::read_to_string(&f).unwrap_or_default());
        let cm = concept_map(&name, &rows);
        let text = serde_json::to_string_pretty(&cm).unwrap_or_default() + "\n";
        if std::fs::write(vocab.join(format!("{name}.json")), text).is_ok() {
            n += 1;
        }
    }
    println!("wrote mappings/structures.txt and {n} ConceptMaps under mappings/vocabulary/ig/");
    std::process::ExitCode::SUCCESS
}
