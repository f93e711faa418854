//! OpenAPI support: the schemas of alloy's primitives and of the channel types (from the
//! protocol core, [`ingrid_protocol::openapi`], re-exported here), and [`check_conforms`],
//! which validates a JSON value against a schema of such a document, so tests can prove that
//! a schema describes what serde really writes. Built with the `openapi` feature.

use serde_json::Value;

pub use ingrid_protocol::openapi::*;

/// Checks that `value` conforms to `schema` (JSON), resolving `$ref`s of the form
/// `#/components/schemas/<name>` in `document`. Supports the keywords this crate's and the
/// hub's schemas use (`$ref`, `type`, `oneOf`, `enum`, `properties`, `required`, `items`,
/// `minItems`, `maxItems`, `minimum`, `maximum`, `minLength`, `maxLength` and `pattern`s of
/// the form `^0x[0-9a-fA-F]{n}$`, `{n,m}$` or `^0x([0-9a-fA-F]{2})*$`); any other pattern is
/// an error. Also refuses object members the schema does not declare, so a renamed field fails.
/// The error names the JSON path of the first mismatch.
pub fn check_conforms(value: &Value, schema: &Value, document: &Value) -> Result<(), String> {
    check_at("$", value, schema, document)
}

fn check_at(at: &str, value: &Value, schema: &Value, document: &Value) -> Result<(), String> {
    if let Some(location) = schema.get("$ref").and_then(Value::as_str) {
        let name = location
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{at}: unsupported reference {location}"))?;
        let target = document
            .pointer(&format!("/components/schemas/{name}"))
            .ok_or_else(|| format!("{at}: reference to the missing component {name}"))?;
        return check_at(at, value, target, document);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options.iter().filter(|s| check_at(at, value, s, document).is_ok()).count();
        if matching != 1 {
            return Err(format!("{at}: {value} matches {matching} of the oneOf options, not 1"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
        return Err(format!("{at}: {value} is not of type {types:?}"));
    }
    match value {
        Value::Object(members) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !members.contains_key(name) {
                    return Err(format!("{at}: required member {name:?} is missing"));
                }
            }
            if let Some(properties) = properties {
                for (name, member) in members {
                    let member_schema =
                        properties.get(name).ok_or_else(|| format!("{at}: member {name:?} is not in the schema"))?;
                    check_at(&format!("{at}.{name}"), member, member_schema, document)?;
                }
            }
        }
        Value::Array(items) => {
            let bound = |key: &str| schema.get(key).and_then(Value::as_u64).map(|n| n as usize);
            if bound("minItems").is_some_and(|min| items.len() < min)
                || bound("maxItems").is_some_and(|max| items.len() > max)
            {
                return Err(format!("{at}: {} items is outside minItems/maxItems", items.len()));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_at(&format!("{at}[{i}]"), item, item_schema, document)?;
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if schema.get("minimum").and_then(Value::as_f64).is_some_and(|min| x < min)
                || schema.get("maximum").and_then(Value::as_f64).is_some_and(|max| x > max)
            {
                return Err(format!("{at}: {n} is outside minimum/maximum"));
            }
        }
        Value::String(s) => {
            let bound = |key: &str| schema.get(key).and_then(Value::as_u64).map(|n| n as usize);
            let length = s.chars().count();
            if bound("minLength").is_some_and(|min| length < min) || bound("maxLength").is_some_and(|max| length > max)
            {
                return Err(format!("{at}: the length {length} is outside minLength/maxLength"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && !matches_hex_pattern(s, pattern).map_err(|e| format!("{at}: {e}"))?
            {
                return Err(format!("{at}: {s:?} does not match {pattern}"));
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
    Ok(())
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// Whether `s` matches one of the hex patterns this module writes.
fn matches_hex_pattern(s: &str, pattern: &str) -> Result<bool, String> {
    let Some(digits) = s.strip_prefix("0x") else { return Ok(false) };
    let hex = digits.chars().all(|c| c.is_ascii_hexdigit());
    if pattern == "^0x([0-9a-fA-F]{2})*$" {
        return Ok(hex && digits.len() % 2 == 0);
    }
    let unsupported = || format!("unsupported pattern {pattern}");
    let counts = pattern.strip_prefix("^0x[0-9a-fA-F]{").and_then(|p| p.strip_suffix("}$")).ok_or_else(unsupported)?;
    let (min, max) = match counts.split_once(',') {
        Some((min, max)) => (min.parse::<usize>(), max.parse::<usize>()),
        None => (counts.parse::<usize>(), counts.parse::<usize>()),
    };
    let (min, max) = (min.map_err(|_| unsupported())?, max.map_err(|_| unsupported())?);
    Ok(hex && (min..=max).contains(&digits.len()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use alloy::primitives::{Address, B256, Bytes, U256};
    use serde_json::json;

    use super::*;
    use crate::{Allocation, Params, State, SubAlloc};
    use utoipa::ToSchema;

    /// A document holding the components of `T` (and what they refer to).
    fn document_of<T: ToSchema>() -> Value {
        let mut schemas = Schemas::new();
        collect::<T>(&mut schemas);
        let map: serde_json::Map<String, Value> = schemas
            .into_iter()
            .map(|(name, schema)| (name, serde_json::to_value(schema).expect("schema to JSON")))
            .collect();
        json!({ "components": { "schemas": map } })
    }

    fn sample_state() -> State {
        State {
            channelId: B256::repeat_byte(0xc1),
            version: 7,
            outcome: Allocation {
                assets: vec![Address::repeat_byte(0xee), Address::repeat_byte(0xaa)],
                balances: vec![[U256::from(1_000_000u64), U256::ZERO], [U256::MAX, U256::from(1)]],
                locked: vec![SubAlloc {
                    id: B256::repeat_byte(0x5b),
                    balances: vec![U256::from(5), U256::ZERO],
                    indexMap: [1, 0],
                }],
            },
            appData: Bytes::from_static(&[0xab, 0xcd]),
            isFinal: true,
        }
    }

    fn sample_params() -> Params {
        Params {
            challengeDuration: 3600,
            nonce: U256::from(0xdead_beef_u64),
            participants: [Address::repeat_byte(0x11), Address::repeat_byte(0x22)],
            ledger: true,
            isVirtual: false,
            app: Address::ZERO,
        }
    }

    /// Every member name of every object in `value`, and in `schema`'s properties, recursively.
    fn member_names(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(members) => {
                for (name, member) in members {
                    out.insert(name.clone());
                    member_names(member, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| member_names(item, out)),
            _ => {}
        }
    }

    fn property_names(document: &Value) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for schema in document["components"]["schemas"].as_object().expect("schemas").values() {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                out.extend(properties.keys().cloned());
            }
        }
        out
    }

    fn check<T: ToSchema + serde::Serialize>(value: &T) -> Value {
        let document = document_of::<T>();
        let json = serde_json::to_value(value).expect("serialize");
        let schema = document["components"]["schemas"][T::name().as_ref()].clone();
        check_conforms(&json, &schema, &document).unwrap_or_else(|e| panic!("{}: {e}\n{json:#}", T::name()));
        let mut names = BTreeSet::new();
        member_names(&json, &mut names);
        assert_eq!(names, property_names(&document), "member names of {} vs its schema", T::name());
        json
    }

    #[test]
    fn params_json_matches_the_schema() {
        let json = check(&sample_params());
        assert_eq!(json["challengeDuration"], json!(3600));
        assert_eq!(json["nonce"], json!("0xdeadbeef"));
        assert_eq!(json["participants"][1], json!("0x2222222222222222222222222222222222222222"));
        assert_eq!(json["isVirtual"], json!(false));
    }

    #[test]
    fn state_json_matches_the_schema() {
        let json = check(&sample_state());
        assert_eq!(json["version"], json!(7));
        assert_eq!(json["appData"], json!("0xabcd"));
        assert_eq!(json["outcome"]["balances"][0], json!(["0xf4240", "0x0"]));
        assert_eq!(json["outcome"]["locked"][0]["indexMap"], json!([1, 0]));
        let mut empty = sample_state();
        empty.appData = Bytes::new();
        empty.outcome.locked.clear();
        let document = document_of::<State>();
        let json = serde_json::to_value(&empty).expect("serialize");
        assert_eq!(json["appData"], json!("0x"));
        check_conforms(&json, &document["components"]["schemas"]["State"], &document).expect("conforms");
    }

    #[test]
    fn allocation_and_sub_alloc_json_match_their_schemas() {
        check(&sample_state().outcome);
        check(&sample_state().outcome.locked[0]);
    }

    #[test]
    fn the_checker_refuses_what_serde_would_not_write() {
        let document = document_of::<State>();
        let schema = &document["components"]["schemas"]["State"];
        let good = serde_json::to_value(sample_state()).expect("serialize");
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            edit(&mut v);
            check_conforms(&v, schema, &document)
        };
        assert!(broken(&|v| v["channelId"] = json!("0x12")).is_err());
        assert!(broken(&|v| v["version"] = json!("7")).is_err());
        assert!(broken(&|v| v["appData"] = json!("0xabc")).is_err());
        assert!(broken(&|v| v["outcome"]["balances"][0] = json!(["0x1"])).is_err());
        assert!(broken(&|v| v["outcome"]["locked"][0]["indexMap"] = json!([70000, 0])).is_err());
        assert!(broken(&|v| v["is_final"] = json!(true)).is_err());
        assert!(
            broken(&|v| {
                v.as_object_mut().expect("object").remove("isFinal");
            })
            .is_err()
        );
        assert!(matches_hex_pattern("0x1", "^[a-z]+$").is_err());
    }

    #[test]
    fn the_schemas_json_round_trips_through_serde() {
        // What the schema documents is also what the hub reads back.
        let state: State =
            serde_json::from_value(serde_json::to_value(sample_state()).expect("state")).expect("deserialize");
        assert_eq!(state, sample_state());
        let params: Params =
            serde_json::from_value(serde_json::to_value(sample_params()).expect("params")).expect("deserialize");
        assert_eq!(params, sample_params());
    }
}
