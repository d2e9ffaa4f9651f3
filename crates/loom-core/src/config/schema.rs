//! JSON Schemas written inside configs (`input_schema`, `output_schema`).

use super::yaml::{Decoder, Node, node_at_pointer};
use crate::contract::Contract;

/// Reads the schema at `node` and compiles it into a [`Contract`].
///
/// A schema that breaks the Draft 2020-12 meta-schema yields one error per problem,
/// each placed at the YAML line of the offending keyword.
pub(crate) fn schema_at(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<Contract> {
    let value = d.json_object(node, path)?;
    match Contract::new(serde_json::Value::Object(value)) {
        Ok(contract) => Some(contract),
        Err(err) => {
            for problem in err.problems() {
                let at = node_at_pointer(node, &problem.pointer);
                let key_path = pointer_to_key_path(path, &problem.pointer);
                d.error(
                    at,
                    &key_path,
                    format!("invalid JSON Schema: {}", problem.message),
                );
            }
            None
        }
    }
}

/// `input_schema` + `/properties/text/type` → `input_schema.properties.text.type`.
fn pointer_to_key_path(base: &str, pointer: &str) -> String {
    let mut out = base.to_owned();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if token.parse::<usize>().is_ok() {
            out.push_str(&format!("[{token}]"));
        } else {
            out.push('.');
            out.push_str(&token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_key_paths() {
        assert_eq!(pointer_to_key_path("input_schema", ""), "input_schema");
        assert_eq!(
            pointer_to_key_path("input_schema", "/properties/a~1b/items/0"),
            "input_schema.properties.a/b.items[0]"
        );
    }
}
