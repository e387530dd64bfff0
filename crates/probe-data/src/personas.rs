//! Personas for latent scaling: a spec of attributes (age band, gender, …) whose values carry a
//! text per language, a first-person description composed from them, and prompt templates
//! (paraphrased variants) that embed the description and end where a party's name would
//! follow. Spec and templates are data (`data/personas/`), not code.
//!
//! A persona is one value per attribute: either every combination of the spec (the grid,
//! optionally filtered) or explicit personas from a JSONL file with survey weights.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::{DataError, Result};

/// The persona description's slot in a template.
pub const PERSONA_SLOT: &str = "persona";

#[derive(Debug, Clone, Deserialize)]
pub struct AttributeValue {
    pub id: String,
    /// Text per language code (`de = "…"`, `en = "…"`), filled into `{<attribute>}` slots.
    #[serde(flatten)]
    pub text: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    pub name: String,
    pub values: Vec<AttributeValue>,
}

impl Attribute {
    pub fn value(&self, id: &str) -> Option<&AttributeValue> {
        self.values.iter().find(|v| v.id == id)
    }
}

/// A persona spec file: `[description]` (one pattern per language) and `[[attribute]]`s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonaSpec {
    /// First-person description per language, with `{<attribute>}` slots.
    pub description: BTreeMap<String, String>,
    #[serde(rename = "attribute")]
    pub attributes: Vec<Attribute>,
}

/// One paraphrased prompt variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonaTemplate {
    pub id: String,
    pub language: String,
    /// Must contain `{persona}`; may use attribute slots directly (e.g. `{year}`).
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    #[serde(rename = "template")]
    templates: Vec<PersonaTemplate>,
}

/// One persona: a value id for every attribute of the spec, in spec order.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    pub id: String,
    /// `(attribute, value id)` in the spec's attribute order.
    pub values: Vec<(String, String)>,
    /// Survey weight (1 for grid personas).
    pub weight: f64,
}

impl Persona {
    pub fn value(&self, attribute: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(a, _)| a == attribute)
            .map(|(_, v)| v.as_str())
    }
}

/// The slot names `{name}` in a pattern, in order of appearance.
pub fn slot_names(pattern: &str) -> std::result::Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{}`", short(pattern)))?;
        let name = &after[..close];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!("bad slot `{{{name}}}` in `{}`", short(pattern)));
        }
        out.push(name);
        rest = &after[close + 1..];
    }
    Ok(out)
}

fn short(s: &str) -> String {
    let s = s.replace('\n', " ");
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn fill(pattern: &str, values: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(pattern.len() + 64);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').expect("validated pattern");
        let name = &after[..close];
        out.push_str(&values(name).expect("validated slot"));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

impl PersonaSpec {
    pub fn load(path: &Path) -> Result<Self> {
        let text = read(path)?;
        Self::parse(&text).map_err(|reason| DataError::File {
            path: path.to_path_buf(),
            reason,
        })
    }

    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let spec: PersonaSpec =
            toml::from_str(text).map_err(|e| format!("not a valid persona spec: {e}"))?;
        if spec.attributes.is_empty() {
            return Err("no [[attribute]] entries".into());
        }
        let mut names = HashSet::new();
        for a in &spec.attributes {
            if a.name == PERSONA_SLOT {
                return Err(format!(
                    "`{PERSONA_SLOT}` is reserved, not an attribute name"
                ));
            }
            if !names.insert(a.name.as_str()) {
                return Err(format!("attribute `{}` appears twice", a.name));
            }
            if a.values.is_empty() {
                return Err(format!("attribute `{}` has no values", a.name));
            }
            let mut ids = HashSet::new();
            for v in &a.values {
                if v.id.trim().is_empty() {
                    return Err(format!(
                        "attribute `{}` has a value with an empty id",
                        a.name
                    ));
                }
                if !ids.insert(v.id.as_str()) {
                    return Err(format!(
                        "attribute `{}`: value `{}` appears twice",
                        a.name, v.id
                    ));
                }
            }
        }
        if spec.description.is_empty() {
            return Err("no [description] patterns".into());
        }
        for (lang, pattern) in &spec.description {
            for slot in slot_names(pattern)? {
                let attr = spec.attribute(slot).ok_or_else(|| {
                    format!("description.{lang}: `{{{slot}}}` is not an attribute")
                })?;
                spec.check_language(attr, lang)?;
            }
        }
        Ok(spec)
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    fn check_language(&self, attr: &Attribute, lang: &str) -> std::result::Result<(), String> {
        match attr.values.iter().find(|v| !v.text.contains_key(lang)) {
            Some(v) => Err(format!(
                "attribute `{}`, value `{}`: no `{lang}` text",
                attr.name, v.id
            )),
            None => Ok(()),
        }
    }

    /// Checks that `templates` fit this spec: every template has the `{persona}` slot, only
    /// known slots, a description in its language, and texts for every attribute it uses;
    /// and every attribute appears in each template (directly or via the description), so
    /// no two personas get the same prompt.
    pub fn check_templates(
        &self,
        templates: &[PersonaTemplate],
    ) -> std::result::Result<(), String> {
        for t in templates {
            let used = slot_names(&t.text).map_err(|e| format!("template `{}`: {e}", t.id))?;
            if !used.contains(&PERSONA_SLOT) {
                return Err(format!(
                    "template `{}` has no {{{PERSONA_SLOT}}} slot",
                    t.id
                ));
            }
            let description = self.description.get(&t.language).ok_or_else(|| {
                format!(
                    "template `{}` is in `{}` but the spec has no description.{}",
                    t.id, t.language, t.language
                )
            })?;
            let mut covered: HashSet<&str> = slot_names(description)
                .map_err(|e| format!("description: {e}"))?
                .into_iter()
                .collect();
            for slot in used.iter().filter(|s| **s != PERSONA_SLOT) {
                let attr = self.attribute(slot).ok_or_else(|| {
                    format!("template `{}`: `{{{slot}}}` is not an attribute", t.id)
                })?;
                self.check_language(attr, &t.language)
                    .map_err(|e| format!("template `{}`: {e}", t.id))?;
                covered.insert(slot);
            }
            if let Some(a) = self
                .attributes
                .iter()
                .find(|a| !covered.contains(a.name.as_str()))
            {
                return Err(format!(
                    "template `{}`: attribute `{}` is used neither by the template nor by \
                     description.{}, so personas differing only in it get the same prompt",
                    t.id, a.name, t.language
                ));
            }
        }
        Ok(())
    }

    /// Number of grid personas after `filter`.
    pub fn grid_size(&self, filter: &GridFilter) -> usize {
        self.attributes
            .iter()
            .map(|a| {
                a.values
                    .iter()
                    .filter(|v| filter.keeps(&a.name, &v.id))
                    .count()
            })
            .product()
    }

    /// Every combination of attribute values that `filter` keeps, in odometer order (the
    /// last attribute varies fastest). Ids are `attr=value;…`.
    pub fn grid(&self, filter: &GridFilter) -> Result<Vec<Persona>, String> {
        filter.check(self)?;
        let kept: Vec<Vec<&AttributeValue>> = self
            .attributes
            .iter()
            .map(|a| {
                a.values
                    .iter()
                    .filter(|v| filter.keeps(&a.name, &v.id))
                    .collect()
            })
            .collect();
        let total: usize = kept.iter().map(Vec::len).product();
        let mut out = Vec::with_capacity(total);
        let mut index = vec![0usize; kept.len()];
        for _ in 0..total {
            let values: Vec<(String, String)> = self
                .attributes
                .iter()
                .zip(&index)
                .zip(&kept)
                .map(|((a, &i), k)| (a.name.clone(), k[i].id.clone()))
                .collect();
            out.push(Persona {
                id: persona_id(&values),
                values,
                weight: 1.0,
            });
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < kept[d].len() {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(out)
    }

    /// Explicit personas, one JSON object per line:
    /// `{"id": "r17", "weight": 1.3, "attributes": {"age": "45-54", …}}` (`id` and `weight`
    /// optional). Every attribute of the spec must be given, with a value id of the spec.
    pub fn read_jsonl(&self, path: &Path) -> Result<Vec<Persona>> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Line {
            id: Option<String>,
            weight: Option<f64>,
            attributes: BTreeMap<String, String>,
        }
        let text = read(path)?;
        let bad = |line: usize, reason: String| DataError::Line {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(raw).map_err(|e| bad(line_no, e.to_string()))?;
            if let Some(extra) = line.attributes.keys().find(|k| self.attribute(k).is_none()) {
                return Err(bad(line_no, format!("unknown attribute `{extra}`")));
            }
            let mut values = Vec::with_capacity(self.attributes.len());
            for a in &self.attributes {
                let v = line
                    .attributes
                    .get(&a.name)
                    .ok_or_else(|| bad(line_no, format!("attribute `{}` missing", a.name)))?;
                if a.value(v).is_none() {
                    return Err(bad(
                        line_no,
                        format!(
                            "attribute `{}` has no value `{v}` (known: {})",
                            a.name,
                            a.values
                                .iter()
                                .map(|v| v.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                values.push((a.name.clone(), v.clone()));
            }
            let weight = line.weight.unwrap_or(1.0);
            if !weight.is_finite() || weight < 0.0 {
                return Err(bad(
                    line_no,
                    format!("weight {weight} (must be finite and ≥ 0)"),
                ));
            }
            let id = line.id.unwrap_or_else(|| persona_id(&values));
            if !seen.insert(id.clone()) {
                return Err(bad(line_no, format!("persona id `{id}` appears twice")));
            }
            out.push(Persona { id, values, weight });
        }
        if out.is_empty() {
            return Err(DataError::File {
                path: path.to_path_buf(),
                reason: "no personas".into(),
            });
        }
        if out.iter().all(|p| p.weight == 0.0) {
            return Err(DataError::File {
                path: path.to_path_buf(),
                reason: "every persona has weight 0".into(),
            });
        }
        Ok(out)
    }

    /// The text of one attribute value in `language`.
    pub fn value_text(&self, attribute: &str, id: &str, language: &str) -> Option<&str> {
        self.attribute(attribute)?
            .value(id)?
            .text
            .get(language)
            .map(String::as_str)
    }

    /// The persona's first-person description in `language`, and the text of each of its
    /// values (for attribute slots such as `{year}` outside the description). `None` when the
    /// spec has no description or some value no text in that language.
    pub fn describe(
        &self,
        persona: &Persona,
        language: &str,
    ) -> Option<(String, BTreeMap<String, String>)> {
        let pattern = self.description.get(language)?;
        let texts: BTreeMap<String, String> = persona
            .values
            .iter()
            .map(|(a, v)| Some((a.clone(), self.value_text(a, v, language)?.to_string())))
            .collect::<Option<_>>()?;
        if slot_names(pattern)
            .ok()?
            .iter()
            .any(|s| !texts.contains_key(*s))
        {
            return None;
        }
        let description = fill(pattern, &|name| texts.get(name).cloned());
        Some((description, texts))
    }

    /// The prompt of `persona` under `template` (which [`Self::check_templates`] accepted).
    pub fn render(&self, template: &PersonaTemplate, persona: &Persona) -> String {
        let text_of = |name: &str| -> Option<String> {
            let id = persona.value(name)?;
            self.attribute(name)?
                .value(id)?
                .text
                .get(&template.language)
                .cloned()
        };
        let description = fill(&self.description[&template.language], &text_of);
        fill(&template.text, &|name| {
            if name == PERSONA_SLOT {
                Some(description.clone())
            } else {
                text_of(name)
            }
        })
    }
}

fn persona_id(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(a, v)| format!("{a}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn read(path: &Path) -> Result<String> {
    crate::read_text(path)
}

/// Loads a persona template file (`[[template]]` entries with `id`, `language`, `text`).
pub fn load_templates(path: &Path) -> Result<Vec<PersonaTemplate>> {
    let text = read(path)?;
    parse_templates(&text).map_err(|reason| DataError::File {
        path: path.to_path_buf(),
        reason,
    })
}

pub fn parse_templates(text: &str) -> std::result::Result<Vec<PersonaTemplate>, String> {
    let file: TemplateFile =
        toml::from_str(text).map_err(|e| format!("not a valid persona template file: {e}"))?;
    if file.templates.is_empty() {
        return Err("no [[template]] entries".into());
    }
    let mut ids = HashSet::new();
    for t in &file.templates {
        if !ids.insert(t.id.as_str()) {
            return Err(format!("template id `{}` appears twice", t.id));
        }
        if t.text.trim().is_empty() {
            return Err(format!("template `{}` is empty", t.id));
        }
    }
    Ok(file.templates)
}

/// Keeps only some values of some attributes: `age=18-24,25-34`.
#[derive(Debug, Clone, Default)]
pub struct GridFilter {
    keep: HashMap<String, HashSet<String>>,
}

impl GridFilter {
    /// Parses `attr=v1,v2` clauses.
    pub fn parse(clauses: &[String]) -> std::result::Result<Self, String> {
        let mut keep: HashMap<String, HashSet<String>> = HashMap::new();
        for c in clauses {
            let (attr, values) = c
                .split_once('=')
                .ok_or_else(|| format!("`{c}`: expected attribute=value[,value…]"))?;
            let values: HashSet<String> = values
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect();
            if values.is_empty() {
                return Err(format!("`{c}`: no values"));
            }
            keep.entry(attr.trim().to_string())
                .or_default()
                .extend(values);
        }
        Ok(GridFilter { keep })
    }

    fn keeps(&self, attr: &str, value: &str) -> bool {
        self.keep.get(attr).is_none_or(|k| k.contains(value))
    }

    fn check(&self, spec: &PersonaSpec) -> std::result::Result<(), String> {
        for (attr, values) in &self.keep {
            let a = spec
                .attribute(attr)
                .ok_or_else(|| format!("filter: no attribute `{attr}`"))?;
            if let Some(v) = values.iter().find(|v| a.value(v).is_none()) {
                return Err(format!("filter: attribute `{attr}` has no value `{v}`"));
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
[description]
de = "Ich bin {gender} und {age}."
en = "I am {gender}, aged {age}."

[[attribute]]
name = "age"
values = [
  { id = "18-29", de = "18 bis 29 Jahre alt", en = "18 to 29" },
  { id = "30+", de = "über 30", en = "over 30" },
]

[[attribute]]
name = "gender"
values = [
  { id = "female", de = "eine Frau", en = "a woman" },
  { id = "male", de = "ein Mann", en = "a man" },
]

[[attribute]]
name = "year"
values = [
  { id = "2021", de = "2021", en = "in 2021" },
  { id = "tomorrow", de = "morgen", en = "tomorrow" },
  { id = "2025", de = "2025", en = "in 2025" },
]
"#;

    const TEMPLATES: &str = r#"
[[template]]
id = "de-a"
language = "de"
text = "{persona} Meine Wahl {year}: die Partei"

[[template]]
id = "en-a"
language = "en"
text = "{persona} My vote {year} goes to the"
"#;

    #[test]
    fn grid_renders_every_combination() {
        let spec = PersonaSpec::parse(SPEC).unwrap();
        let templates = parse_templates(TEMPLATES).unwrap();
        spec.check_templates(&templates).unwrap();
        let all = spec.grid(&GridFilter::default()).unwrap();
        assert_eq!(all.len(), 12);
        assert_eq!(all[0].id, "age=18-29;gender=female;year=2021");
        assert_eq!(all[1].id, "age=18-29;gender=female;year=tomorrow");
        assert_eq!(all[11].id, "age=30+;gender=male;year=2025");
        let prompts: HashSet<String> = all.iter().map(|p| spec.render(&templates[0], p)).collect();
        assert_eq!(prompts.len(), 12, "every persona gets its own prompt");
        assert_eq!(
            spec.render(&templates[0], &all[1]),
            "Ich bin eine Frau und 18 bis 29 Jahre alt. Meine Wahl morgen: die Partei"
        );
        assert_eq!(
            spec.render(&templates[1], &all[11]),
            "I am a man, aged over 30. My vote in 2025 goes to the"
        );
        let filter =
            GridFilter::parse(&["year=2021,tomorrow".into(), "gender=female".into()]).unwrap();
        assert_eq!(spec.grid_size(&filter), 4);
        let some = spec.grid(&filter).unwrap();
        assert_eq!(some.len(), 4);
        assert!(some.iter().all(|p| p.value("gender") == Some("female")));
        assert!(spec
            .grid(&GridFilter::parse(&["year=1990".into()]).unwrap())
            .is_err());
        assert!(spec
            .grid(&GridFilter::parse(&["colour=red".into()]).unwrap())
            .is_err());
    }

    #[test]
    fn bad_specs_and_templates_are_named() {
        let empty = SPEC.replace(
            r#"values = [
  { id = "female", de = "eine Frau", en = "a woman" },
  { id = "male", de = "ein Mann", en = "a man" },
]"#,
            "values = []",
        );
        let err = PersonaSpec::parse(&empty).unwrap_err();
        assert!(err.contains("attribute `gender` has no values"), "{err}");
        let unknown_slot = SPEC.replace("{gender} und", "{sex} und");
        let err = PersonaSpec::parse(&unknown_slot).unwrap_err();
        assert!(err.contains("`{sex}` is not an attribute"), "{err}");
        let missing_text = SPEC.replace(r#", en = "a man""#, "");
        let err = PersonaSpec::parse(&missing_text).unwrap_err();
        assert!(err.contains("value `male`: no `en` text"), "{err}");

        let spec = PersonaSpec::parse(SPEC).unwrap();
        let no_slot = parse_templates(&TEMPLATES.replace("{persona} My", "My")).unwrap();
        let err = spec.check_templates(&no_slot).unwrap_err();
        assert!(
            err.contains("template `en-a` has no {persona} slot"),
            "{err}"
        );
        let no_year = parse_templates(&TEMPLATES.replace(" {year}: die", ": die")).unwrap();
        let err = spec.check_templates(&no_year).unwrap_err();
        assert!(err.contains("attribute `year` is used neither"), "{err}");
        let french = parse_templates(&TEMPLATES.replace("\"en\"", "\"fr\"")).unwrap();
        let err = spec.check_templates(&french).unwrap_err();
        assert!(err.contains("no description.fr"), "{err}");
        let err = parse_templates(&format!("{TEMPLATES}{TEMPLATES}")).unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn jsonl_personas_carry_weights_and_are_checked() {
        let spec = PersonaSpec::parse(SPEC).unwrap();
        let dir = tempdir();
        let path = dir.join("p.jsonl");
        std::fs::write(
            &path,
            "{\"id\": \"r1\", \"weight\": 2.5, \"attributes\": {\"age\": \"30+\", \"gender\": \"male\", \"year\": \"2021\"}}\n\n{\"attributes\": {\"age\": \"18-29\", \"gender\": \"female\", \"year\": \"2025\"}}\n",
        )
        .unwrap();
        let people = spec.read_jsonl(&path).unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].weight, 2.5);
        assert_eq!(people[1].weight, 1.0);
        assert_eq!(people[1].id, "age=18-29;gender=female;year=2025");
        for (line, needle) in [
            ("{\"attributes\": {\"age\": \"30+\", \"gender\": \"male\"}}", "attribute `year` missing"),
            ("{\"attributes\": {\"age\": \"99\", \"gender\": \"male\", \"year\": \"2021\"}}", "no value `99`"),
            ("{\"weight\": -1, \"attributes\": {\"age\": \"30+\", \"gender\": \"male\", \"year\": \"2021\"}}", "weight -1"),
            ("not json", "p.jsonl:1:"),
        ] {
            std::fs::write(&path, line).unwrap();
            let err = spec.read_jsonl(&path).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "probe-personas-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
