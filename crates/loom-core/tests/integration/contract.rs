//! Contracts: mesh spec §18 items 33–36, adapted to a real Draft 2020-12 validator.

use loom_core::contract::{Contract, MAX_VIOLATIONS, Side, check_schema};
use serde_json::{Value, json};

fn contract(schema: Value) -> Contract {
    Contract::new(schema).expect("test schema is valid")
}

/// The rendered violations of `value`, or an empty list when it passes.
#[track_caller]
fn check(schema: Value, value: Value, side: Side) -> Vec<String> {
    match contract(schema).check(&value) {
        Ok(()) => Vec::new(),
        Err(violations) => violations.render(side),
    }
}

#[track_caller]
fn input(schema: Value, value: Value) -> Vec<String> {
    check(schema, value, Side::Input)
}

fn text_schema() -> Value {
    json!({
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {"type": "string"},
            "n": {"type": "integer"},
            "ratio": {"type": "number"},
            "flag": {"type": "boolean"},
            "tags": {"type": "array"}
        }
    })
}

#[test]
fn empty_schema_accepts_anything() {
    for schema in [json!({}), Value::Null, json!(true)] {
        let c = contract(schema);
        assert!(c.accepts_anything());
        for value in [
            json!(1),
            json!("x"),
            json!([1]),
            json!({"a": 1}),
            Value::Null,
        ] {
            assert_eq!(c.check(&value), Ok(()));
        }
    }
    assert!(Contract::any().accepts_anything());
    assert!(Contract::default().is_valid(&json!([1, 2])));
    assert!(
        Contract::from_optional(None)
            .expect("absent schema")
            .accepts_anything()
    );
    assert!(!contract(json!({"type": "object"})).accepts_anything());
}

#[test]
fn non_object_against_object_type_gives_exactly_one_error() {
    for (value, got) in [
        (json!([1]), "array"),
        (json!("s"), "string"),
        (json!(3), "integer"),
        (Value::Null, "null"),
    ] {
        assert_eq!(
            input(text_schema(), value),
            [format!("input: expected object, got {got}")]
        );
    }
}

#[test]
fn each_missing_required_field_is_reported() {
    let schema = json!({"type": "object", "required": ["text", "language"]});
    assert_eq!(
        input(schema.clone(), json!({})),
        [
            "input: missing required field 'text'",
            "input: missing required field 'language'"
        ]
    );
    assert_eq!(
        input(schema, json!({"text": "x", "language": "fa"})),
        Vec::<String>::new()
    );
}

#[test]
fn type_checks_cover_each_json_type_and_booleans_are_not_numbers() {
    let ok = json!({"text": "a", "n": 3, "ratio": 3, "flag": false, "tags": []});
    assert_eq!(
        input(text_schema(), ok),
        Vec::<String>::new(),
        "3 passes number"
    );
    let bad = json!({"text": 1, "n": true, "ratio": true, "flag": 0, "tags": {}});
    assert_eq!(
        input(text_schema(), bad),
        [
            "input/text: expected string, got integer",
            "input/n: expected integer, got boolean",
            "input/ratio: expected number, got boolean",
            "input/flag: expected boolean, got integer",
            "input/tags: expected array, got object",
        ]
    );
    assert_eq!(
        input(text_schema(), json!({"text": "a", "n": 1.5})),
        ["input/n: expected integer, got number"]
    );
    // JSON Schema counts 1.0 as an integer (loom-ai 0.9.0 did not); documented in the module.
    assert_eq!(
        input(text_schema(), json!({"text": "a", "n": 1.0})),
        Vec::<String>::new()
    );
    // Extra keys are allowed unless the schema says otherwise.
    assert_eq!(
        input(text_schema(), json!({"text": "a", "extra": {"deep": 1}})),
        Vec::<String>::new()
    );
}

#[test]
fn nested_keywords_are_enforced_now() {
    let schema = json!({
        "type": "object",
        "properties": {
            "meta": {
                "type": "object",
                "required": ["id"],
                "properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}}
            },
            "kind": {"enum": ["a", "b"]},
            "count": {"type": "integer", "minimum": 1, "maximum": 10},
            "code": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3},
            "maybe": {"type": ["string", "null"]}
        }
    });
    let value = json!({
        "meta": {"tags": ["x", 2, "z", "w"]},
        "kind": "c",
        "count": 0,
        "code": "ab",
        "maybe": 5
    });
    let rendered = check(schema.clone(), value, Side::Output);
    for want in [
        "output/meta: missing required field 'id'",
        "output/meta/tags/1: expected string, got integer",
        "output/meta/tags: value has more than 3 items",
        "output/kind: expected one of [\"a\",\"b\"], got \"c\"",
        "output/count: value is less than the minimum of 1",
        "output/code: value is shorter than 3 characters",
        "output/code: value does not match \"^[A-Z]{3}$\"",
        "output/maybe: expected null or string, got integer",
    ] {
        assert!(
            rendered.iter().any(|r| r == want),
            "missing {want:?} in {rendered:#?}"
        );
    }
    assert_eq!(rendered.len(), 8, "{rendered:#?}");
    let good = json!({"meta": {"id": 1, "tags": ["x"]}, "kind": "a", "count": 10, "code": "ABC", "maybe": null});
    assert_eq!(check(schema, good, Side::Output), Vec::<String>::new());
}

#[test]
fn violations_carry_pointers_into_the_value() {
    let schema = json!({"type": "object", "properties": {"rows": {"type": "array", "items": {
        "type": "object", "properties": {"a/b": {"type": "integer"}}}}}});
    let violations = contract(schema)
        .check(&json!({"rows": [{"a/b": 1}, {"a/b": "x"}]}))
        .expect_err("one bad row");
    assert_eq!(violations.len(), 1);
    let v = &violations.as_slice()[0];
    assert_eq!(v.pointer, "/rows/1/a~1b");
    assert_eq!(v.keyword, "type");
    assert_eq!(v.message, "expected integer, got string");
    assert_eq!(v.to_string(), "/rows/1/a~1b: expected integer, got string");
}

#[test]
fn additional_properties_name_the_unexpected_fields() {
    let schema = json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false});
    assert_eq!(
        input(schema, json!({"a": 1, "x": 2, "y": 3})),
        ["input: unexpected fields 'x', 'y'"]
    );
}

#[test]
fn error_text_matches_the_python_worker_format() {
    let c = contract(text_schema());
    let one = c.check(&json!({})).expect_err("text missing");
    assert_eq!(
        one.error_text(Side::Input),
        r#"Input validation: ["input: missing required field 'text'"]"#
    );
    let two = c.check(&json!({"n": true})).expect_err("two problems");
    assert_eq!(
        two.error_text(Side::Output),
        r#"Output validation: ["output: missing required field 'text'", 'output/n: expected integer, got boolean']"#
    );
    assert_eq!(
        two.to_string(),
        "(root): missing required field 'text'; /n: expected integer, got boolean"
    );
}

#[test]
fn violations_stop_at_the_cap() {
    let schema = json!({"type": "array", "items": {"type": "integer"}});
    let value = Value::Array((0..500).map(|i| json!(format!("s{i}"))).collect());
    let violations = contract(schema)
        .check(&value)
        .expect_err("every item is wrong");
    assert_eq!(violations.len(), MAX_VIOLATIONS);
    assert!(violations.is_truncated());
    assert!(
        violations
            .error_text(Side::Input)
            .ends_with(", '... more violations omitted']")
    );
}

#[test]
fn invalid_schema_reports_every_problem_with_its_pointer() {
    let err = Contract::new(json!({
        "type": "object",
        "properties": {"a": {"type": "strng"}, "b": {"minLength": -1}},
        "required": "a"
    }))
    .expect_err("three problems");
    let pointers: Vec<&str> = err.problems().iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        ["/properties/a/type", "/properties/b/minLength", "/required"],
        "{err}"
    );
    assert!(
        err.problems()[0].message.contains("invalid type \"strng\""),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("invalid JSON Schema: /properties/a/type: "),
        "{err}"
    );
    assert!(
        !err.problems()[0].message.starts_with("invalid JSON Schema"),
        "callers add the prefix"
    );

    let root = Contract::new(json!([1])).expect_err("an array is not a schema");
    assert_eq!(root.problems().len(), 1, "duplicates are removed: {root}");
    assert_eq!(root.problems()[0].pointer, "");
    assert!(
        root.to_string()
            .starts_with("invalid JSON Schema: (root): "),
        "{root}"
    );
}

#[test]
fn invalid_regex_reports_its_pointer() {
    let err =
        Contract::new(json!({"properties": {"code": {"pattern": "(["}}})).expect_err("bad regex");
    assert_eq!(err.problems()[0].pointer, "/properties/code/pattern");
}

#[test]
fn external_refs_are_refused_without_fetching() {
    let err = Contract::new(json!({"properties": {"a": {"$ref": "https://example.com/x.json"}}}))
        .expect_err("external");
    assert_eq!(err.problems()[0].pointer, "/properties/a/$ref");
    assert!(
        err.problems()[0]
            .message
            .starts_with("external $ref 'https://example.com/x.json' is not supported"),
        "{err}"
    );
    let err = Contract::new(json!({"items": {"$ref": "other.json"}})).expect_err("relative file");
    assert_eq!(err.problems()[0].pointer, "/items/$ref");
    let err = Contract::new(json!({"$defs": {}, "items": {"$ref": "#/$defs/missing"}}))
        .expect_err("dangling");
    assert_eq!(err.problems()[0].pointer, "/items/$ref");
    assert!(
        err.problems()[0].message.contains("does not resolve"),
        "{err}"
    );
    // Internal refs work.
    let c = contract(
        json!({"$defs": {"name": {"type": "string"}}, "properties": {"n": {"$ref": "#/$defs/name"}}}),
    );
    assert_eq!(
        c.check(&json!({"n": 1}))
            .expect_err("wrong type")
            .render(Side::Input),
        ["input/n: expected string, got integer"]
    );
}

#[test]
fn check_schema_validates_without_keeping_the_contract() {
    assert_eq!(check_schema(&json!({"type": "string"})), Ok(()));
    assert_eq!(check_schema(&json!({})), Ok(()));
    assert!(check_schema(&json!({"type": 7})).is_err());
}

#[test]
fn contracts_are_cheap_to_clone_and_keep_their_schema() {
    let c = contract(text_schema());
    let copy = c.clone();
    assert_eq!(copy.schema(), &text_schema());
    assert!(copy.is_valid(&json!({"text": "x"})));
    assert!(!c.is_valid(&json!({})));
}
