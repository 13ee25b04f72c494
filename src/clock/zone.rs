//! Time zones as people write them: one check for every zone field
//! (`[templates] timezone`, `escalation[].if_time.tz`, `charts[].grafana.tz`,
//! the `tz` of `datetimeformat`), so a mistake is refused the same way
//! wherever it is made, with the name that was probably meant.

use chrono_tz::{Tz, TZ_VARIANTS};

/// Names people reach for that the IANA database does not have, with the
/// zone they mean. China has one zone, named after Shanghai; India's is
/// Kolkata; abbreviations are ambiguous, so only the common ones that
/// are not themselves IANA names are listed.
const ALIASES: &[(&str, &str)] = &[
    ("asia/beijing", "Asia/Shanghai"),
    ("asia/peking", "Asia/Shanghai"),
    ("beijing", "Asia/Shanghai"),
    ("china", "Asia/Shanghai"),
    ("china standard time", "Asia/Shanghai"),
    ("asia/guangzhou", "Asia/Shanghai"),
    ("asia/shenzhen", "Asia/Shanghai"),
    ("asia/hangzhou", "Asia/Shanghai"),
    ("asia/mumbai", "Asia/Kolkata"),
    ("asia/bombay", "Asia/Kolkata"),
    ("asia/new_delhi", "Asia/Kolkata"),
    ("asia/delhi", "Asia/Kolkata"),
    ("asia/bangalore", "Asia/Kolkata"),
    ("asia/saigon", "Asia/Ho_Chi_Minh"),
    ("pst", "America/Los_Angeles"),
    ("pdt", "America/Los_Angeles"),
    ("cet", "Europe/Berlin"),
    ("bst", "Europe/London"),
    ("jst", "Asia/Tokyo"),
    ("kst", "Asia/Seoul"),
    ("ist", "Asia/Kolkata"),
    ("sgt", "Asia/Singapore"),
    ("hkt", "Asia/Hong_Kong"),
    ("z", "UTC"),
    ("utc+8", "Asia/Shanghai"),
    ("gmt+8", "Asia/Shanghai"),
    ("utc+08:00", "Asia/Shanghai"),
];

/// Why a name is not a zone: says what was given and, where one is close,
/// the name that was probably meant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not an IANA time zone{}", suggestion_text(.suggestion))]
pub struct ZoneError {
    pub given: String,
    pub suggestion: Option<&'static str>,
}

fn suggestion_text(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(name) => format!("; did you mean {name}?"),
        None => " (e.g. UTC, Europe/Berlin, Asia/Shanghai)".to_string(),
    }
}

/// The IANA zone named `name`, exactly as the database spells it.
pub fn parse(name: &str) -> Result<Tz, ZoneError> {
    let trimmed = name.trim();
    if let Ok(tz) = trimmed.parse::<Tz>() {
        // Leading or trailing blanks are a mistake worth naming, not
        // something to accept in one place and refuse in another.
        if trimmed == name {
            return Ok(tz);
        }
        return Err(ZoneError {
            given: name.to_string(),
            suggestion: Some(tz.name()),
        });
    }
    Err(ZoneError {
        given: name.to_string(),
        suggestion: suggest(trimmed),
    })
}

/// A zone of Grafana's `tz` parameter: an IANA name, or Grafana's own
/// `browser` and `utc`.
pub fn parse_grafana(name: &str) -> Result<(), ZoneError> {
    match name {
        "browser" | "utc" => Ok(()),
        _ => parse(name).map(drop),
    }
}

/// The zone a mistaken name most likely meant: the same name in other
/// case, a known alias, or a name within two edits.
fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some(tz) = TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
    {
        return Some(tz.name());
    }
    if let Some((_, meant)) = ALIASES.iter().find(|(alias, _)| *alias == lower) {
        return Some(meant);
    }
    // "Shanghai", "berlin": a city alone.
    if !lower.contains('/') {
        if let Some(tz) = TZ_VARIANTS.iter().find(|tz| {
            tz.name()
                .rsplit('/')
                .next()
                .is_some_and(|city| city.eq_ignore_ascii_case(&lower.replace(' ', "_")))
        }) {
            return Some(tz.name());
        }
    }
    TZ_VARIANTS
        .iter()
        .map(|tz| {
            let distance = strsim::damerau_levenshtein(&tz.name().to_ascii_lowercase(), &lower);
            (distance, tz.name())
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_parse() {
        assert_eq!(parse("Asia/Shanghai"), Ok(chrono_tz::Asia::Shanghai));
        assert_eq!(parse("UTC"), Ok(chrono_tz::UTC));
        assert_eq!(
            parse("America/Argentina/Buenos_Aires").map(|t| t.name()),
            Ok("America/Argentina/Buenos_Aires")
        );
    }

    #[test]
    fn a_case_mistake_names_the_zone_meant() {
        let err = parse("asia/shanghai").unwrap_err();
        assert_eq!(err.suggestion, Some("Asia/Shanghai"));
        assert_eq!(
            err.to_string(),
            "\"asia/shanghai\" is not an IANA time zone; did you mean Asia/Shanghai?"
        );
        assert_eq!(
            parse("EUROPE/BERLIN").unwrap_err().suggestion,
            Some("Europe/Berlin")
        );
    }

    #[test]
    fn names_the_database_lacks_point_to_the_real_one() {
        assert_eq!(
            parse("Asia/Beijing").unwrap_err().suggestion,
            Some("Asia/Shanghai")
        );
        assert_eq!(
            parse("Asia/Mumbai").unwrap_err().suggestion,
            Some("Asia/Kolkata")
        );
        assert_eq!(parse("Tokyo").unwrap_err().suggestion, Some("Asia/Tokyo"));
        assert_eq!(
            parse("Asia/Shangai").unwrap_err().suggestion,
            Some("Asia/Shanghai")
        );
        assert_eq!(parse(" UTC").unwrap_err().suggestion, Some("UTC"));
    }

    #[test]
    fn nonsense_gets_examples_not_a_guess() {
        let err = parse("my office").unwrap_err();
        assert_eq!(err.suggestion, None);
        assert!(err.to_string().contains("e.g. UTC"), "{err}");
    }

    #[test]
    fn grafana_takes_its_own_names_too() {
        assert_eq!(parse_grafana("browser"), Ok(()));
        assert_eq!(parse_grafana("utc"), Ok(()));
        assert_eq!(parse_grafana("Europe/Paris"), Ok(()));
        assert_eq!(
            parse_grafana("Asia/Beijing").unwrap_err().suggestion,
            Some("Asia/Shanghai")
        );
    }
}
