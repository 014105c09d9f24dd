//! The code generation pipeline, shared by `build.rs` and the tests that
//! check an extracted upstream spec generates the same types.
//!
//! spec → drop hand-written multipart operations → hoist open enums into named
//! components → progenitor, plus the open enums emitted from the spec's values.

use proc_macro2::TokenStream;
use progenitor::{GenerationSettings, Generator, InterfaceStyle, TypeImpl};
use quote::{format_ident, quote};
use serde_json::{Map, Value};

/// Multipart operations progenitor cannot generate; each has a hand-written
/// counterpart in `src/parts.rs`. Any other multipart operation fails the build.
const HAND_WRITTEN: &[&str] = &["addUploadPart"];

/// Response enums that must accept values this version does not know:
/// (schema, property, name of the open enum type).
pub const OPEN_ENUMS: &[(&str, &str, &str)] = &[
    ("Upload", "status", "UploadStatus"),
    ("OpenAIFile", "purpose", "FilePurpose"),
    ("OpenAIFile", "status", "FileStatus"),
];

/// Generated source: the client and types, and the open enums.
pub struct Generated {
    /// Everything progenitor generates.
    pub client: String,
    /// The open enums, for `crate::generated::open_enums`.
    pub open_enums: String,
}

/// Runs the pipeline on an OpenAPI 3.0 document.
pub fn generate(mut spec: Value) -> Result<Generated, String> {
    drop_hand_written_operations(&mut spec)?;
    let open_enums = hoist_open_enums(&mut spec)?;
    let openapi: openapiv3::OpenAPI =
        serde_json::from_value(spec).map_err(|e| format!("not OpenAPI 3.0: {e}"))?;

    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Positional)
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq")
        .with_inner_type(quote!(crate::config::ClientContext));
    for e in &open_enums {
        settings.with_replacement(
            &e.name,
            format!("crate::generated::open_enums::{}", e.name),
            [TypeImpl::Display, TypeImpl::FromStr].into_iter(),
        );
    }
    let tokens = Generator::new(&settings)
        .generate_tokens(&openapi)
        .map_err(|e| format!("progenitor failed: {e}"))?;
    Ok(Generated {
        client: pretty(tokens)?,
        open_enums: pretty(open_enums.iter().map(OpenEnum::tokens).collect())?,
    })
}

fn pretty(tokens: TokenStream) -> Result<String, String> {
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| format!("generated code does not parse: {e}"))?;
    Ok(prettyplease::unparse(&file))
}

/// Removes multipart operations (progenitor rejects them) and the request
/// schemas only they used.
fn drop_hand_written_operations(spec: &mut Value) -> Result<(), String> {
    let mut orphaned = Vec::new();
    let mut unexpected = Vec::new();
    let paths = spec["paths"]
        .as_object_mut()
        .ok_or("the spec has no paths")?;
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        item.retain(|_, op| {
            let Some(body) = op.pointer("/requestBody/content/multipart~1form-data") else {
                return true;
            };
            let id = op["operationId"].as_str().unwrap_or("<no operationId>");
            if !HAND_WRITTEN.contains(&id) {
                unexpected.push(format!("`{id}` at {path}"));
            }
            if let Some(r) = body.pointer("/schema/$ref").and_then(Value::as_str) {
                orphaned.push(r.to_string());
            }
            false
        });
    }
    if !unexpected.is_empty() {
        return Err(format!(
            "multipart operation {} has no hand-written counterpart; write it in \
             src/parts.rs and list it in HAND_WRITTEN",
            unexpected.join(", ")
        ));
    }
    paths.retain(|_, item| item.as_object().is_some_and(|o| !o.is_empty()));

    for reference in orphaned {
        let still_used = serde_json::to_string(&spec["paths"])
            .expect("JSON value serialises")
            .contains(&format!("\"{reference}\""));
        if !still_used {
            let name = reference.rsplit('/').next().unwrap_or_default();
            if let Some(schemas) = spec["components"]["schemas"].as_object_mut() {
                schemas.remove(name);
            }
        }
    }
    Ok(())
}

struct OpenEnum {
    name: String,
    description: String,
    values: Vec<String>,
}

/// Moves each open enum into a named component and points its property there,
/// so that progenitor uses the replacement type emitted from the same values.
fn hoist_open_enums(spec: &mut Value) -> Result<Vec<OpenEnum>, String> {
    let mut found = Vec::new();
    for &(schema, property, name) in OPEN_ENUMS {
        let pointer = format!("/components/schemas/{schema}/properties/{property}");
        let slot = spec
            .pointer_mut(&pointer)
            .ok_or_else(|| format!("open enum {pointer} is missing"))?;
        let inline = std::mem::replace(
            slot,
            serde_json::json!({ "$ref": format!("#/components/schemas/{name}") }),
        );
        let values: Vec<String> = inline["enum"]
            .as_array()
            .ok_or_else(|| format!("{pointer} has no enum"))?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{pointer} has a value that is not a string"))?;
        let description = inline["description"].as_str().unwrap_or("").to_string();
        let components: &mut Map<String, Value> = spec["components"]["schemas"]
            .as_object_mut()
            .ok_or("the spec has no components.schemas")?;
        components.insert(name.to_string(), inline);
        found.push(OpenEnum {
            name: name.to_string(),
            description,
            values,
        });
    }
    Ok(found)
}

impl OpenEnum {
    fn variant(value: &str) -> proc_macro2::Ident {
        let camel: String = value
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut cs = w.chars();
                let first = cs.next().expect("non-empty word").to_ascii_uppercase();
                std::iter::once(first).chain(cs).collect::<String>()
            })
            .collect();
        format_ident!("{camel}")
    }

    fn tokens(&self) -> TokenStream {
        let name = format_ident!("{}", self.name);
        let doc = format!(
            "{} Open enum: a value unknown to this version is kept in `Other`.",
            self.description
        );
        let variants: Vec<_> = self.values.iter().map(|v| Self::variant(v)).collect();
        let values = &self.values;
        let variant_docs = values.iter().map(|v| format!("`{v}`"));
        quote! {
            #[doc = #doc]
            #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum #name {
                #( #[doc = #variant_docs] #variants, )*
                /// A value not listed in the spec this crate was built from.
                Other(String),
            }

            impl #name {
                /// Every value listed in the spec.
                pub const KNOWN: &'static [&'static str] = &[#(#values),*];

                /// The value as it appears on the wire.
                pub fn as_str(&self) -> &str {
                    match self {
                        #( Self::#variants => #values, )*
                        Self::Other(other) => other,
                    }
                }

                /// Whether the value is one listed in the spec.
                pub fn is_known(&self) -> bool {
                    !matches!(self, Self::Other(_))
                }
            }

            impl ::std::convert::From<&str> for #name {
                fn from(value: &str) -> Self {
                    match value {
                        #( #values => Self::#variants, )*
                        other => Self::Other(other.to_string()),
                    }
                }
            }

            impl ::std::str::FromStr for #name {
                type Err = ::std::convert::Infallible;
                fn from_str(value: &str) -> Result<Self, Self::Err> {
                    Ok(Self::from(value))
                }
            }

            impl ::std::fmt::Display for #name {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    f.write_str(self.as_str())
                }
            }

            impl ::serde::Serialize for #name {
                fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    serializer.serialize_str(self.as_str())
                }
            }

            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    let value = <::std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                    Ok(Self::from(value.as_ref()))
                }
            }

            impl ::schemars::JsonSchema for #name {
                fn schema_name() -> String {
                    stringify!(#name).to_string()
                }

                fn json_schema(_: &mut ::schemars::r#gen::SchemaGenerator) -> ::schemars::schema::Schema {
                    let known = ::schemars::schema::SchemaObject {
                        enum_values: Some(vec![#(::serde_json::Value::from(#values)),*]),
                        ..Default::default()
                    };
                    let any = ::schemars::schema::SchemaObject {
                        instance_type: Some(::schemars::schema::InstanceType::String.into()),
                        ..Default::default()
                    };
                    ::schemars::schema::SchemaObject {
                        metadata: Some(Box::new(::schemars::schema::Metadata {
                            description: Some(#doc.to_string()),
                            ..Default::default()
                        })),
                        subschemas: Some(Box::new(::schemars::schema::SubschemaValidation {
                            any_of: Some(vec![known.into(), any.into()]),
                            ..Default::default()
                        })),
                        ..Default::default()
                    }
                    .into()
                }
            }
        }
    }
}
