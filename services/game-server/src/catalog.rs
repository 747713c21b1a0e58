//! The champions and battle fields the game serves, read from a TOML data
//! file so that content changes need no rebuild.

use std::{collections::BTreeMap, ops::Range, path::Path};

use contracts::{
    battle_field::BattleField,
    champion::{Champion, ChampionType},
};
use serde::Deserialize;
use toml::Spanned;

/// The data file compiled into the binary, used when `--data` is not given:
/// the image then needs nothing beside the binary.
pub const BUILT_IN: &str = include_str!("../data/game.toml");

/// The name errors give the built-in data file.
pub const BUILT_IN_NAME: &str = "services/game-server/data/game.toml (built in)";

/// Why a data file was rejected: which file, which line, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read at all.
    #[error("cannot read game data {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema, or a value is impossible.
    #[error("{source_name}:{line}: {message}")]
    Invalid {
        /// The file.
        source_name: String,
        /// 1-based line of the offending value.
        line: usize,
        /// What is wrong, naming the field and value.
        message: String,
    },
}

/// The validated content of a data file, indexed for the RPCs.
#[derive(Debug, Clone)]
pub struct Catalog {
    champions: BTreeMap<i32, Champion>,
    battle_fields: Vec<BattleField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataFile {
    #[serde(default, rename = "champion")]
    champions: Vec<ChampionEntry>,
    #[serde(default, rename = "battle_field")]
    battle_fields: Vec<BattleFieldEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChampionEntry {
    id: Spanned<i32>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    name: Spanned<String>,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BattleFieldEntry {
    id: Spanned<i32>,
    name: Spanned<String>,
    description: String,
}

impl Catalog {
    /// Reads and validates the data file at `path`.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| CatalogError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The data file compiled into the binary.
    pub fn built_in() -> Result<Self, CatalogError> {
        Self::parse(BUILT_IN, BUILT_IN_NAME)
    }

    /// Parses and validates `text`; `source_name` is what errors call it.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, CatalogError> {
        let invalid = |span: Option<Range<usize>>, message: String| CatalogError::Invalid {
            source_name: source_name.to_owned(),
            line: span.map_or(1, |span| line_of(text, span.start)),
            message,
        };
        let file: DataFile = toml::from_str(text).map_err(|error| invalid(error.span(), error.message().to_owned()))?;

        let mut champions = BTreeMap::new();
        for entry in file.champions {
            let id = *entry.id.get_ref();
            if id <= 0 {
                return Err(invalid(Some(entry.id.span()), format!("champion id must be positive, got {id}")));
            }
            let kind = match ChampionType::from_str_name(entry.kind.get_ref()) {
                Some(ChampionType::Unknown) | None => {
                    return Err(invalid(
                        Some(entry.kind.span()),
                        format!(
                            "champion {id}: type {:?} is not one of MARKSMAN, MAGE, ASSASSIN, TANK, FIGHTER, SUPPORT",
                            entry.kind.get_ref()
                        ),
                    ));
                }
                Some(kind) => kind,
            };
            if entry.name.get_ref().trim().is_empty() {
                return Err(invalid(Some(entry.name.span()), format!("champion {id}: name is empty")));
            }
            let champion = Champion {
                champion_id: id,
                r#type: kind as i32,
                name: entry.name.into_inner(),
                message: entry.message,
            };
            if champions.insert(id, champion).is_some() {
                return Err(invalid(Some(entry.id.span()), format!("champion id {id} is used twice")));
            }
        }

        let mut battle_fields: Vec<BattleField> = Vec::with_capacity(file.battle_fields.len());
        for entry in file.battle_fields {
            let id = *entry.id.get_ref();
            if id <= 0 {
                return Err(invalid(Some(entry.id.span()), format!("battle_field id must be positive, got {id}")));
            }
            if battle_fields.iter().any(|field| field.battle_field_id == id) {
                return Err(invalid(Some(entry.id.span()), format!("battle_field id {id} is used twice")));
            }
            if entry.name.get_ref().trim().is_empty() {
                return Err(invalid(Some(entry.name.span()), format!("battle_field {id}: name is empty")));
            }
            battle_fields.push(BattleField {
                battle_field_id: id,
                name: entry.name.into_inner(),
                description: entry.description,
            });
        }
        battle_fields.sort_by_key(|field| field.battle_field_id);

        if champions.is_empty() {
            return Err(invalid(None, "no [[champion]] entries: the game needs at least one champion".into()));
        }
        if battle_fields.is_empty() {
            return Err(invalid(None, "no [[battle_field]] entries: the game needs at least one battle field".into()));
        }
        Ok(Self { champions, battle_fields })
    }

    /// The champion with `id`, if any.
    pub fn champion(&self, id: i32) -> Option<&Champion> {
        self.champions.get(&id)
    }

    /// Every champion, ordered by id.
    pub fn champions(&self) -> impl Iterator<Item = &Champion> {
        self.champions.values()
    }

    /// Every battle field, ordered by id.
    pub fn battle_fields(&self) -> &[BattleField] {
        &self.battle_fields
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&byte| byte == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        Catalog::parse(text, "game.toml").expect_err("must be rejected").to_string()
    }

    const FIELD: &str = "[[battle_field]]\nid = 1\nname = \"Rift\"\ndescription = \"\"\n";

    #[test]
    fn the_built_in_file_has_the_seed_content() {
        let catalog = Catalog::built_in().expect("built-in data is valid");
        let akali = catalog.champion(1).expect("Akali");
        assert_eq!(akali.name, "Akali");
        assert_eq!(akali.r#type(), ChampionType::Assassin);
        assert_eq!(akali.message, "If you look dangerous, you better be dangerous.");
        assert_eq!(catalog.champion(2).unwrap().r#type(), ChampionType::Mage);
        assert_eq!(catalog.champion(3).unwrap().r#type(), ChampionType::Fighter);
        let names: Vec<_> = catalog.battle_fields().iter().map(|field| field.name.as_str()).collect();
        assert_eq!(names, ["Summoner's Rift", "The Twisted Treeline", "Howling Abyss"]);
    }

    #[test]
    fn champions_come_out_ordered_by_id() {
        let text = format!(
            "[[champion]]\nid = 9\ntype = \"TANK\"\nname = \"B\"\nmessage = \"\"\n\
             [[champion]]\nid = 4\ntype = \"MAGE\"\nname = \"A\"\nmessage = \"\"\n{FIELD}"
        );
        let catalog = Catalog::parse(&text, "game.toml").unwrap();
        let ids: Vec<_> = catalog.champions().map(|champion| champion.champion_id).collect();
        assert_eq!(ids, [4, 9]);
    }

    #[test]
    fn a_duplicate_id_names_the_line_of_the_second_one() {
        let text = format!(
            "[[champion]]\nid = 1\ntype = \"TANK\"\nname = \"A\"\nmessage = \"\"\n\
             [[champion]]\nid = 1\ntype = \"MAGE\"\nname = \"B\"\nmessage = \"\"\n{FIELD}"
        );
        assert_eq!(error_of(&text), "game.toml:7: champion id 1 is used twice");
    }

    #[test]
    fn an_unknown_type_is_named_with_its_line() {
        let text = format!("[[champion]]\nid = 1\ntype = \"WIZARD\"\nname = \"A\"\nmessage = \"\"\n{FIELD}");
        let error = error_of(&text);
        assert!(error.starts_with("game.toml:3: champion 1: type \"WIZARD\""), "{error}");
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_rejected_with_a_line() {
        let text = format!("[[champion]]\nid = 1\ntype = \"TANK\"\nname = \"A\"\nmessage = \"\"\ncolour = 3\n{FIELD}");
        let error = error_of(&text);
        assert!(error.starts_with("game.toml:6: unknown field `colour`"), "{error}");

        let text = format!("[[champion]]\nid = \"one\"\ntype = \"TANK\"\nname = \"A\"\nmessage = \"\"\n{FIELD}");
        let error = error_of(&text);
        assert!(error.starts_with("game.toml:2: "), "{error}");
    }

    #[test]
    fn non_positive_ids_and_empty_content_are_rejected() {
        let text = format!("[[champion]]\nid = 0\ntype = \"TANK\"\nname = \"A\"\nmessage = \"\"\n{FIELD}");
        assert_eq!(error_of(&text), "game.toml:2: champion id must be positive, got 0");
        assert!(error_of(FIELD).contains("no [[champion]] entries"));
    }
}
