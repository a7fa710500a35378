//! Feast's type system as the macros see it: parsing `schema = [...]` entries,
//! Spark DDL (`schema_json`) strings, and mapping types to Rust and runtime tokens.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, Token};

use super::ctxt::Ctxt;

/// A Feast value type (`feast.types`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FeastType {
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    Bool,
    UnixTimestamp,
    Array(Box<FeastType>),
}

/// The scalar type names accepted in `schema = [...]`.
pub(crate) const FEAST_TYPES: &str =
    "Int32, Int64, Float32, Float64, String, Bytes, Bool, UnixTimestamp, Array(<type>)";

/// The type names accepted in Spark DDL strings.
pub(crate) const DDL_TYPES: &str = "int, integer, bigint, long, float, double, string, boolean, \
     timestamp, binary, array<...>";

impl FeastType {
    fn scalar(name: &str) -> Option<FeastType> {
        Some(match name {
            "Int32" => FeastType::Int32,
            "Int64" => FeastType::Int64,
            "Float32" => FeastType::Float32,
            "Float64" => FeastType::Float64,
            "String" => FeastType::String,
            "Bytes" => FeastType::Bytes,
            "Bool" => FeastType::Bool,
            "UnixTimestamp" => FeastType::UnixTimestamp,
            _ => return None,
        })
    }

    /// The `FeastType` constant in the runtime.
    pub(crate) fn to_runtime(&self, krate: &TokenStream) -> TokenStream {
        let t = quote!(#krate::__private::FeastType);
        match self {
            FeastType::Int32 => quote!(#t::Int32),
            FeastType::Int64 => quote!(#t::Int64),
            FeastType::Float32 => quote!(#t::Float32),
            FeastType::Float64 => quote!(#t::Float64),
            FeastType::String => quote!(#t::String),
            FeastType::Bytes => quote!(#t::Bytes),
            FeastType::Bool => quote!(#t::Bool),
            FeastType::UnixTimestamp => quote!(#t::UnixTimestamp),
            FeastType::Array(inner) => {
                let inner = inner.to_runtime(krate);
                quote!(#t::Array(&#inner))
            }
        }
    }

    /// The Rust type of a value of this Feast type in a generated row struct.
    pub(crate) fn rust_type(&self, krate: &TokenStream) -> TokenStream {
        match self {
            FeastType::Int32 => quote!(i32),
            FeastType::Int64 => quote!(i64),
            FeastType::Float32 => quote!(f32),
            FeastType::Float64 => quote!(f64),
            FeastType::String => quote!(::std::string::String),
            FeastType::Bytes => quote!(::std::vec::Vec<u8>),
            FeastType::Bool => quote!(bool),
            FeastType::UnixTimestamp => {
                quote!(#krate::chrono::DateTime<#krate::chrono::Utc>)
            }
            FeastType::Array(inner) => {
                let inner = inner.rust_type(krate);
                quote!(::std::vec::Vec<#inner>)
            }
        }
    }
}

/// `Float32` or `Array(Int64)` as written in a schema list, before checking.
pub(crate) struct TypeSyntax {
    pub(crate) name: Ident,
    pub(crate) arg: Option<Box<TypeSyntax>>,
}

impl Parse for TypeSyntax {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        let arg = if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            Some(Box::new(content.parse()?))
        } else {
            None
        };
        Ok(TypeSyntax { name, arg })
    }
}

impl TypeSyntax {
    /// Resolves the syntax to a Feast type, recording an error for an unknown name.
    pub(crate) fn resolve(&self, cx: &Ctxt) -> Option<FeastType> {
        let name = self.name.to_string();
        match (name.as_str(), &self.arg) {
            ("Array", Some(inner)) => {
                let inner = inner.resolve(cx)?;
                if matches!(inner, FeastType::Array(_)) {
                    cx.error_spanned_by(
                        inner_name(self),
                        "Feast has no nested arrays: `Array(Array(..))` is not a Feast type",
                    );
                    return None;
                }
                Some(FeastType::Array(Box::new(inner)))
            }
            ("Array", None) => {
                cx.error_spanned_by(
                    &self.name,
                    "`Array` needs an element type, as in `Array(Int64)`",
                );
                None
            }
            (_, Some(_)) => {
                cx.error_spanned_by(
                    &self.name,
                    format!("`{name}` takes no type argument; only `Array(..)` does"),
                );
                None
            }
            (_, None) => match FeastType::scalar(&name) {
                Some(t) => Some(t),
                None => {
                    let hint = match name.to_ascii_lowercase().as_str() {
                        "i32" | "int" | "integer" => " (Feast calls it `Int32`)",
                        "i64" | "long" | "bigint" => " (Feast calls it `Int64`)",
                        "f32" | "float" => " (Feast calls it `Float32`)",
                        "f64" | "double" => " (Feast calls it `Float64`)",
                        "str" | "string" => " (Feast calls it `String`)",
                        "bool" | "boolean" => " (Feast calls it `Bool`)",
                        "timestamp" | "datetime" => " (Feast calls it `UnixTimestamp`)",
                        _ => "",
                    };
                    cx.error_spanned_by(
                        &self.name,
                        format!(
                            "unknown Feast type `{name}`{hint}\nexpected one of: {FEAST_TYPES}"
                        ),
                    );
                    None
                }
            },
        }
    }
}

fn inner_name(t: &TypeSyntax) -> Ident {
    t.arg
        .as_ref()
        .map_or_else(|| t.name.clone(), |a| a.name.clone())
}

/// One `name: Type` entry of a `schema = [...]` list.
pub(crate) struct FieldSyntax {
    pub(crate) name: Ident,
    pub(crate) ty: TypeSyntax,
}

/// `[name: Type, ...]`.
pub(crate) struct SchemaSyntax {
    pub(crate) fields: Vec<FieldSyntax>,
    pub(crate) span: Span,
}

impl Parse for SchemaSyntax {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        let bracket = syn::bracketed!(content in input);
        let mut fields = Vec::new();
        while !content.is_empty() {
            let name: Ident = content.parse()?;
            if !content.peek(Token![:]) {
                return Err(syn::Error::new(
                    name.span(),
                    format!("expected `{name}: <Feast type>`, as in `conv_rate: Float32`"),
                ));
            }
            content.parse::<Token![:]>()?;
            let ty: TypeSyntax = content.parse()?;
            fields.push(FieldSyntax { name, ty });
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(SchemaSyntax {
            fields,
            span: bracket.span.join(),
        })
    }
}

/// A checked field: its name (with the span of its declaration) and type.
#[derive(Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) span: Span,
    pub(crate) ty: FeastType,
}

impl SchemaSyntax {
    /// Resolves every entry, reporting unknown types and repeated names.
    pub(crate) fn resolve(&self, cx: &Ctxt) -> Vec<Field> {
        let mut out: Vec<Field> = Vec::new();
        for f in &self.fields {
            let name = f.name.to_string();
            if out.iter().any(|o| o.name == name) {
                cx.error_spanned_by(&f.name, format!("duplicate schema field `{name}`"));
            }
            if let Some(ty) = f.ty.resolve(cx) {
                out.push(Field {
                    name,
                    span: f.name.span(),
                    ty,
                });
            }
        }
        out
    }
}

/// One column of a Spark DDL list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DdlColumn {
    pub(crate) name: String,
    pub(crate) ty: FeastType,
    /// Declared `NOT NULL`: a record without a value here is rejected.
    pub(crate) not_null: bool,
}

/// Parses a Spark DDL column list (`"driver_id integer, amount double not
/// null"`), the format of Feast's `JsonFormat(schema_json)`: `<name> <type>
/// [NOT NULL]` per entry, as in Spark, where a column is nullable unless it
/// says `NOT NULL`. Errors name the entry (1-based) and list the valid types.
pub(crate) fn parse_ddl(ddl: &str) -> Result<Vec<DdlColumn>, String> {
    let entries = split_top_level(ddl);
    if entries.iter().all(|e| e.trim().is_empty()) {
        return Err("schema_json is empty: expected a column list like \"driver_id bigint, event_timestamp timestamp\"".into());
    }
    let mut out: Vec<DdlColumn> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let n = i + 1;
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(format!("schema_json entry {n} is empty (a stray comma?)"));
        }
        let (name, ty) = match entry.split_once(char::is_whitespace) {
            Some((name, ty)) => (name.trim_matches('`'), ty.trim()),
            None => {
                return Err(format!(
                    "schema_json entry {n} (`{entry}`) has no type: expected `<column> <type>`, as in `conv_rate double`"
                ));
            }
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "schema_json entry {n} (`{entry}`): `{name}` is not a column name (letters, digits and `_`)"
            ));
        }
        let (ty, not_null) = split_not_null(ty);
        if ty.is_empty() {
            return Err(format!(
                "schema_json entry {n} (`{entry}`) has no type before NOT NULL: expected `<column> <type> NOT NULL`, as in `amount double not null`"
            ));
        }
        let ty =
            parse_ddl_type(ty).map_err(|e| format!("schema_json entry {n} (`{entry}`): {e}"))?;
        if out.iter().any(|o| o.name == name) {
            return Err(format!(
                "schema_json entry {n} (`{entry}`): column `{name}` is declared twice"
            ));
        }
        out.push(DdlColumn {
            name: name.to_owned(),
            ty,
            not_null,
        });
    }
    Ok(out)
}

/// `double not null` -> (`double`, true); any case, any spacing.
fn split_not_null(ty: &str) -> (&str, bool) {
    let words: Vec<&str> = ty.split_whitespace().collect();
    match words.as_slice() {
        [.., not, null] if not.eq_ignore_ascii_case("not") && null.eq_ignore_ascii_case("null") => {
            // Cut at the start of `not`, keeping the type's own text.
            let cut = ty.to_ascii_lowercase().rfind("not").unwrap_or(ty.len());
            (ty[..cut].trim_end(), true)
        }
        _ => (ty, false),
    }
}

fn parse_ddl_type(ty: &str) -> Result<FeastType, String> {
    let lower = ty.to_ascii_lowercase();
    let lower = lower.trim();
    if let Some(rest) = lower.strip_prefix("array") {
        let inner = rest
            .trim()
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .ok_or_else(|| {
                format!("malformed array type `{ty}`: expected `array<element type>`")
            })?;
        let inner = parse_ddl_type(inner)?;
        if matches!(inner, FeastType::Array(_)) {
            return Err(format!("nested arrays (`{ty}`) have no Feast type"));
        }
        return Ok(FeastType::Array(Box::new(inner)));
    }
    Ok(match lower {
        "int" | "integer" => FeastType::Int32,
        "bigint" | "long" => FeastType::Int64,
        "float" | "real" => FeastType::Float32,
        "double" => FeastType::Float64,
        "string" => FeastType::String,
        "boolean" | "bool" => FeastType::Bool,
        "timestamp" => FeastType::UnixTimestamp,
        "binary" => FeastType::Bytes,
        _ if lower.contains(char::is_whitespace) => {
            let mut words = lower.split_whitespace();
            let first = words.next().unwrap_or_default();
            let second = words.next().unwrap_or_default();
            let clause = ["comment", "default", "generated", "collate", "null"];
            if parse_ddl_type(first).is_ok() && clause.contains(&second) {
                return Err(format!(
                    "`{}` is not supported after the type; a column takes only `NOT NULL` there, as in `amount double not null`",
                    second.to_ascii_uppercase()
                ));
            }
            return Err(format!(
                "`{ty}` is not one type: entries are separated by commas, as in `a int, b double`"
            ));
        }
        _ => return Err(format!("unknown type `{ty}`; expected one of: {DDL_TYPES}")),
    })
}

/// Splits on commas that are not inside `<...>`.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_feast_docs_schema_json() {
        let cols = parse_ddl(
            "driver_id integer, event_timestamp timestamp, conv_rate double, acc_rate double, created timestamp",
        )
        .unwrap();
        let cols: Vec<(String, FeastType, bool)> = cols
            .into_iter()
            .map(|c| (c.name, c.ty, c.not_null))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("driver_id".to_owned(), FeastType::Int32, false),
                (
                    "event_timestamp".to_owned(),
                    FeastType::UnixTimestamp,
                    false
                ),
                ("conv_rate".to_owned(), FeastType::Float64, false),
                ("acc_rate".to_owned(), FeastType::Float64, false),
                ("created".to_owned(), FeastType::UnixTimestamp, false),
            ]
        );
    }

    #[test]
    fn not_null_marks_a_required_column_in_any_case() {
        let cols = parse_ddl(
            "card_id string NOT NULL, amount double not null, tags array<string>  Not  Null, merchant string",
        )
        .unwrap();
        let got: Vec<(&str, &FeastType, bool)> = cols
            .iter()
            .map(|c| (c.name.as_str(), &c.ty, c.not_null))
            .collect();
        assert_eq!(
            got,
            vec![
                ("card_id", &FeastType::String, true),
                ("amount", &FeastType::Float64, true),
                ("tags", &FeastType::Array(Box::new(FeastType::String)), true),
                ("merchant", &FeastType::String, false),
            ]
        );
    }

    #[test]
    fn other_clauses_after_the_type_are_named() {
        assert_eq!(
            parse_ddl("amount double comment 'in euros'").unwrap_err(),
            "schema_json entry 1 (`amount double comment 'in euros'`): `COMMENT` is not supported after the type; a column takes only `NOT NULL` there, as in `amount double not null`"
        );
        assert!(
            parse_ddl("amount double null")
                .unwrap_err()
                .contains("`NULL` is not supported after the type")
        );
        assert!(
            parse_ddl("amount not null")
                .unwrap_err()
                .contains("has no type before NOT NULL")
        );
    }

    #[test]
    fn every_ddl_type_maps_to_its_feast_type() {
        let cases = [
            ("int", FeastType::Int32),
            ("INTEGER", FeastType::Int32),
            ("bigint", FeastType::Int64),
            ("long", FeastType::Int64),
            ("float", FeastType::Float32),
            ("double", FeastType::Float64),
            ("string", FeastType::String),
            ("boolean", FeastType::Bool),
            ("timestamp", FeastType::UnixTimestamp),
            ("binary", FeastType::Bytes),
            (
                "array<bigint>",
                FeastType::Array(Box::new(FeastType::Int64)),
            ),
            (
                "array< string >",
                FeastType::Array(Box::new(FeastType::String)),
            ),
        ];
        for (ddl, want) in cases {
            assert_eq!(parse_ddl_type(ddl), Ok(want), "{ddl}");
        }
    }

    #[test]
    fn ddl_errors_name_the_entry() {
        assert_eq!(
            parse_ddl("a int, b dubble").unwrap_err(),
            format!(
                "schema_json entry 2 (`b dubble`): unknown type `dubble`; expected one of: {DDL_TYPES}"
            )
        );
        assert_eq!(
            parse_ddl("a int,, b int").unwrap_err(),
            "schema_json entry 2 is empty (a stray comma?)"
        );
        assert_eq!(
            parse_ddl("a int b double").unwrap_err(),
            "schema_json entry 1 (`a int b double`): `int b double` is not one type: entries are separated by commas, as in `a int, b double`"
        );
        assert_eq!(
            parse_ddl("conv_rate").unwrap_err(),
            "schema_json entry 1 (`conv_rate`) has no type: expected `<column> <type>`, as in `conv_rate double`"
        );
        assert!(
            parse_ddl("a int, a bigint")
                .unwrap_err()
                .contains("declared twice")
        );
        assert!(
            parse_ddl("a array<array<int>>")
                .unwrap_err()
                .contains("nested arrays")
        );
        assert!(
            parse_ddl("a array<int")
                .unwrap_err()
                .contains("malformed array type")
        );
        assert!(parse_ddl("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn backquoted_names_are_accepted() {
        assert_eq!(
            parse_ddl("`driver_id` bigint").unwrap(),
            vec![DdlColumn {
                name: "driver_id".to_owned(),
                ty: FeastType::Int64,
                not_null: false
            }]
        );
    }
}
