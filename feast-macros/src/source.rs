//! `#[file_source]`, `#[kinesis_source]` and `#[push_source]` on unit structs.

use heck::ToSnakeCase;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::ParseStream;
use syn::spanned::Spanned;

use crate::common::attr::{self, Attr, Meta, StrMap};
use crate::common::ctxt::Ctxt;
use crate::common::dtype::{self, DdlColumn, FeastType, Field, SchemaSyntax};
use crate::common::mention;
use crate::common::{
    UNIT_DERIVES, item_with_errors, location, missing_derives, opt_str, str_pairs,
};
use crate::entity::check_name;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Kinesis,
    Push,
}

impl Kind {
    fn macro_name(self) -> &'static str {
        match self {
            Kind::File => "file_source",
            Kind::Kinesis => "kinesis_source",
            Kind::Push => "push_source",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::File => &[
                "name",
                "path",
                "schema",
                "timestamp_field",
                "created_timestamp_column",
                "field_mapping",
                "description",
                "tags",
                "owner",
                "crate",
            ],
            Kind::Kinesis => &[
                "name",
                "stream_name",
                "region",
                "record_format",
                "batch_source",
                "timestamp_field",
                "created_timestamp_column",
                "field_mapping",
                "description",
                "tags",
                "owner",
                "crate",
            ],
            Kind::Push => &[
                "name",
                "batch_source",
                "description",
                "tags",
                "owner",
                "crate",
            ],
        }
    }
}

/// `JsonFormat(schema_json = "...")`, Feast's record format for Kinesis.
struct RecordFormat {
    schema_json: syn::LitStr,
    columns: Vec<DdlColumn>,
}

struct Args {
    name: Attr<syn::LitStr>,
    path: Attr<syn::LitStr>,
    schema: Attr<Vec<Field>>,
    timestamp_field: Attr<syn::LitStr>,
    created_timestamp_column: Attr<syn::LitStr>,
    field_mapping: Attr<StrMap>,
    stream_name: Attr<syn::LitStr>,
    region: Attr<syn::LitStr>,
    record_format: Attr<RecordFormat>,
    batch_source: Attr<syn::Path>,
    meta: Meta,
}

pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let m = kind.macro_name();
    let input: syn::ItemStruct = match syn::parse2(item.clone()) {
        Ok(s) => s,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                format!("`#[{m}]` goes on a unit struct, as in `pub struct DriverStats;`"),
            );
            return item_with_errors(item, err);
        }
    };
    let cx = Ctxt::new();
    let args = parse_args(&cx, kind, args);
    if !matches!(input.fields, syn::Fields::Unit) || !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.ident,
            format!(
                "`#[{m}]` goes on a unit struct, as in `pub struct {};`",
                input.ident
            ),
        );
    }
    check(&cx, kind, &args);
    match cx.check() {
        Ok(()) => expand_source(kind, &input, args),
        Err(e) => {
            let mentions = mention(args.batch_source.get());
            let stubs = stub_impls(kind, &input, &args.meta.krate());
            let out = item_with_errors(item, e);
            quote!(#out #mentions #stubs)
        }
    }
}

/// The source's traits with a stand-in definition, emitted beside its errors:
/// a view that names the source then compiles far enough to report only the
/// source's own mistake, not a second "is not a stream source" error.
fn stub_impls(kind: Kind, input: &syn::ItemStruct, krate: &TokenStream) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let p = quote!(#krate::__private);
    let ident = &input.ident;
    let marker = match kind {
        Kind::File => quote!(impl #p::BatchSource for #ident {}),
        Kind::Kinesis | Kind::Push => quote!(impl #p::StreamSource for #ident {}),
    };
    quote! {
        const _: () = {
            impl #p::DataSource for #ident {
                const DEF: &'static #p::DataSourceDef = &#p::INVALID_SOURCE;
            }
            #marker
        };
    }
}

fn parse_args(cx: &Ctxt, kind: Kind, tokens: TokenStream) -> Args {
    let m = kind.macro_name();
    let mut a = Args {
        name: Attr::none(m, "name"),
        path: Attr::none(m, "path"),
        schema: Attr::none(m, "schema"),
        timestamp_field: Attr::none(m, "timestamp_field"),
        created_timestamp_column: Attr::none(m, "created_timestamp_column"),
        field_mapping: Attr::none(m, "field_mapping"),
        stream_name: Attr::none(m, "stream_name"),
        region: Attr::none(m, "region"),
        record_format: Attr::none(m, "record_format"),
        batch_source: Attr::none(m, "batch_source"),
        meta: Meta::new(m),
    };
    for arg in attr::split_args(cx, m, tokens) {
        let key = arg.key.to_string();
        if !kind.keys().contains(&key.as_str()) {
            match (kind, key.as_str()) {
                (Kind::Kinesis, "watermark_delay_threshold") => cx.error_spanned_by(
                    &arg.key,
                    "`watermark_delay_threshold` is a Kafka source argument in Feast; Kinesis sources don't take it (Feast's own Kinesis example fails on it)",
                ),
                (Kind::File, "file_format") => cx.error_spanned_by(
                    &arg.key,
                    "`file_format` is not needed: file sources are Parquet",
                ),
                _ => attr::unknown_arg(cx, m, &arg.key, kind.keys()),
            }
            continue;
        }
        if a.meta.try_set(cx, &arg) {
            continue;
        }
        match key.as_str() {
            "name" => {
                if let Some(v) = arg.parse(cx) {
                    check_name(cx, &v);
                    a.name.set(cx, &arg.key, v);
                }
            }
            "path" => {
                if let Some(v) = arg.parse::<syn::LitStr>(cx) {
                    if v.value().trim().is_empty() {
                        cx.error_spanned_by(&v, "`path` is empty");
                    }
                    a.path.set(cx, &arg.key, v);
                }
            }
            "schema" => {
                if let Some(v) = arg.parse::<SchemaSyntax>(cx) {
                    if v.fields.is_empty() {
                        cx.error_at(v.span, "`schema` is empty: list the file's columns, as in `[driver_id: Int64, event_timestamp: UnixTimestamp]`");
                    }
                    let fields = v.resolve(cx);
                    a.schema.set(cx, &arg.key, fields);
                }
            }
            "timestamp_field" => {
                if let Some(v) = arg.parse(cx) {
                    a.timestamp_field.set(cx, &arg.key, v);
                }
            }
            "created_timestamp_column" => {
                if let Some(v) = arg.parse(cx) {
                    a.created_timestamp_column.set(cx, &arg.key, v);
                }
            }
            "field_mapping" => {
                if let Some(v) = arg.parse::<StrMap>(cx) {
                    v.check_unique(cx, "field_mapping");
                    a.field_mapping.set(cx, &arg.key, v);
                }
            }
            "stream_name" => {
                if let Some(v) = arg.parse::<syn::LitStr>(cx) {
                    check_stream_name(cx, &v);
                    a.stream_name.set(cx, &arg.key, v);
                }
            }
            "region" => {
                if let Some(v) = arg.parse::<syn::LitStr>(cx) {
                    if v.value().trim().is_empty() {
                        cx.error_spanned_by(
                            &v,
                            "`region` is empty: name an AWS region, like \"us-east-1\"",
                        );
                    } else if !is_region_name(&v.value()) {
                        cx.error_spanned_by(
                            &v,
                            format!(
                                "\"{}\" is not an AWS region name: lowercase words joined by `-`, ending in a number, like \"us-east-1\" or \"eu-central-2\"",
                                v.value()
                            ),
                        );
                    }
                    a.region.set(cx, &arg.key, v);
                }
            }
            "record_format" => {
                if let Some(v) = arg
                    .parse_with(cx, parse_record_format)
                    .and_then(|v| resolve_record_format(cx, v))
                {
                    a.record_format.set(cx, &arg.key, v);
                }
            }
            "batch_source" => {
                if let Some(v) = arg.parse(cx) {
                    a.batch_source.set(cx, &arg.key, v);
                }
            }
            _ => unreachable!("every key in Kind::keys is handled"),
        }
    }
    a
}

/// The shape of every AWS region name (`us-east-1`, `ap-southeast-4`,
/// `us-gov-west-1`, `cn-north-1`): two letters, one or more words, a number.
/// Whether the region exists is only known at run time.
fn is_region_name(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn check_stream_name(cx: &Ctxt, lit: &syn::LitStr) {
    let v = lit.value();
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        cx.error_spanned_by(
            lit,
            format!("invalid Kinesis stream name \"{v}\": 1 to 128 characters from a-z, A-Z, 0-9, `_`, `.` and `-`"),
        );
    }
}

fn parse_record_format(input: ParseStream<'_>) -> syn::Result<(syn::Ident, syn::LitStr)> {
    let format: syn::Ident = input.parse()?;
    let content;
    syn::parenthesized!(content in input);
    let key: syn::Ident = content.parse()?;
    if key != "schema_json" {
        return Err(syn::Error::new(
            key.span(),
            format!("expected `schema_json = \"...\"`, found `{key}`"),
        ));
    }
    content.parse::<syn::Token![=]>()?;
    let lit: syn::LitStr = content.parse()?;
    if !content.is_empty() {
        return Err(content.error("unexpected tokens after `schema_json = \"...\"`"));
    }
    Ok((format, lit))
}

fn resolve_record_format(
    cx: &Ctxt,
    (format, lit): (syn::Ident, syn::LitStr),
) -> Option<RecordFormat> {
    match format.to_string().as_str() {
        "JsonFormat" => {}
        "AvroFormat" | "ProtoFormat" => {
            cx.error_spanned_by(
                &format,
                format!("`{format}` is not supported yet; use `JsonFormat(schema_json = \"...\")`"),
            );
            return None;
        }
        _ => {
            cx.error_spanned_by(
                &format,
                format!(
                    "unknown record format `{format}`; expected `JsonFormat(schema_json = \"...\")`"
                ),
            );
            return None;
        }
    }
    match dtype::parse_ddl(&lit.value()) {
        Ok(columns) => Some(RecordFormat {
            schema_json: lit,
            columns,
        }),
        Err(msg) => {
            cx.error_spanned_by(&lit, format!("{msg}\nschema_json is a Spark DDL column list, as in \"driver_id bigint, event_timestamp timestamp, conv_rate double\""));
            None
        }
    }
}

/// Cross-argument rules: required keys, and timestamp and mapping columns that
/// must exist in the declared schema.
fn check(cx: &Ctxt, kind: Kind, a: &Args) {
    let m = kind.macro_name();
    let require = |present: bool, key: &str, example: &str| {
        if !present {
            cx.error_at(
                Span::call_site(),
                format!("`#[{m}]` needs `{key}`, as in `{key} = {example}`"),
            );
        }
    };
    match kind {
        Kind::File => {
            require(
                a.path.get().is_some(),
                "path",
                "\"data/driver_stats.parquet\"",
            );
            require(
                a.schema.get().is_some(),
                "schema",
                "[driver_id: Int64, event_timestamp: UnixTimestamp, ...]",
            );
        }
        Kind::Kinesis => {
            require(
                a.stream_name.get().is_some(),
                "stream_name",
                "\"driver_stats\"",
            );
            require(a.region.get().is_some(), "region", "\"us-east-1\"");
            require(
                a.record_format.get().is_some() || cx.has_errors(),
                "record_format",
                "JsonFormat(schema_json = \"...\")",
            );
            if a.batch_source.get().is_none() {
                cx.error_at(
                    Span::call_site(),
                    "`#[kinesis_source]` needs `batch_source = ...`: the file source that keeps the stream's history for training and materialization",
                );
            }
        }
        Kind::Push => {
            if a.batch_source.get().is_none() {
                cx.error_at(
                    Span::call_site(),
                    "`#[push_source]` needs `batch_source = ...`: the file source that pushed rows are logged to and that defines their schema",
                );
            }
        }
    }

    let columns: Vec<(String, FeastType)> = match (a.schema.get(), a.record_format.get()) {
        (Some(fields), _) => fields
            .iter()
            .map(|f| (f.name.clone(), f.ty.clone()))
            .collect(),
        (None, Some(rf)) => rf
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect(),
        _ => return,
    };
    let names = columns
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let check_ts = |lit: &syn::LitStr, key: &str| {
        let v = lit.value();
        match columns.iter().find(|(n, _)| *n == v) {
            None => cx.error_spanned_by(lit, format!("{key} `{v}` is not a column of this source; its columns are: {names}")),
            Some((_, ty)) if *ty != FeastType::UnixTimestamp => cx.error_spanned_by(
                lit,
                format!("{key} `{v}` must be a timestamp column (UnixTimestamp / `timestamp`), but it is {ty:?}"),
            ),
            Some(_) => {}
        }
    };
    match a.timestamp_field.get() {
        Some(lit) => check_ts(lit, "timestamp_field"),
        None => {
            if !columns.iter().any(|(n, _)| n == "event_timestamp") {
                cx.error_at(
                    Span::call_site(),
                    format!("this source has no `event_timestamp` column; name its event-time column with `timestamp_field = \"...\"` (columns: {names})"),
                );
            }
        }
    }
    if let Some(lit) = a.created_timestamp_column.get() {
        check_ts(lit, "created_timestamp_column");
    }
    if let Some(map) = a.field_mapping.get() {
        for (from, _) in &map.entries {
            if !columns.iter().any(|(n, _)| *n == from.value()) {
                cx.error_spanned_by(from, format!("field_mapping renames `{}`, which is not a column of this source; its columns are: {names}", from.value()));
            }
        }
    }
}

fn fields_tokens(krate: &TokenStream, columns: &[(String, FeastType)]) -> TokenStream {
    let fields = columns.iter().map(|(name, ty)| {
        let ty = ty.to_runtime(krate);
        quote!(#krate::__private::FieldDef { name: #name, dtype: #ty })
    });
    quote!(&[#(#fields),*])
}

fn expand_source(kind: Kind, input: &syn::ItemStruct, a: Args) -> TokenStream {
    let krate = a.meta.krate();
    let p = quote!(#krate::__private);
    let ident = &input.ident;
    let name = a
        .name
        .get()
        .map_or_else(|| ident.to_string().to_snake_case(), syn::LitStr::value);
    // A push source has no columns of its own: the runtime reads its batch source's.
    let timestamp_field = match (kind, a.timestamp_field.get()) {
        (Kind::Push, _) => String::new(),
        (_, Some(lit)) => lit.value(),
        (_, None) => "event_timestamp".to_owned(),
    };
    let created = match a.created_timestamp_column.get() {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let field_mapping = str_pairs(a.field_mapping.get());
    let description = opt_str(a.meta.description.get(), attr::doc_string(&input.attrs));
    let owner = opt_str(a.meta.owner.get(), None);
    let tags = str_pairs(a.meta.tags.get());
    let loc = location(&krate, ident.span());
    let batch_source = a
        .batch_source
        .get()
        .map(|path| quote_spanned!(path.span()=> #p::batch_source::<#path>()));

    let (kind_tokens, marker) = match kind {
        Kind::File => {
            let path = a.path.get();
            let columns: Vec<(String, FeastType)> = a
                .schema
                .get()
                .map(|fs| fs.iter().map(|f| (f.name.clone(), f.ty.clone())).collect())
                .unwrap_or_default();
            let schema = fields_tokens(&krate, &columns);
            (
                quote!(#p::SourceKind::File { path: #path, schema: #schema }),
                quote!(impl #p::BatchSource for #ident {}),
            )
        }
        Kind::Kinesis => {
            let stream_name = a.stream_name.get();
            let region = a.region.get();
            let (schema_json, schema, not_null) = match a.record_format.get() {
                Some(rf) => {
                    let columns: Vec<(String, FeastType)> = rf
                        .columns
                        .iter()
                        .map(|c| (c.name.clone(), c.ty.clone()))
                        .collect();
                    let not_null = rf.columns.iter().filter(|c| c.not_null).map(|c| &c.name);
                    (
                        rf.schema_json.clone(),
                        fields_tokens(&krate, &columns),
                        quote!(&[#(#not_null),*]),
                    )
                }
                None => (
                    syn::LitStr::new("", Span::call_site()),
                    quote!(&[]),
                    quote!(&[]),
                ),
            };
            (
                quote!(#p::SourceKind::Kinesis {
                    stream_name: #stream_name,
                    region: #region,
                    record_format: #p::RecordFormat::Json {
                        schema_json: #schema_json,
                        schema: #schema,
                        not_null: #not_null,
                    },
                    batch_source: #batch_source,
                }),
                quote!(impl #p::StreamSource for #ident {}),
            )
        }
        Kind::Push => (
            quote!(#p::SourceKind::Push { batch_source: #batch_source }),
            quote!(impl #p::StreamSource for #ident {}),
        ),
    };

    let derives = missing_derives(&input.attrs, UNIT_DERIVES);
    quote! {
        #derives
        #input

        const _: () = {
            static __FEAST_DEF: #p::DataSourceDef = #p::DataSourceDef {
                name: #name,
                kind: #kind_tokens,
                timestamp_field: #timestamp_field,
                created_timestamp_column: #created,
                field_mapping: #field_mapping,
                description: #description,
                tags: #tags,
                owner: #owner,
                location: #loc,
            };

            impl #p::DataSource for #ident {
                const DEF: &'static #p::DataSourceDef = &__FEAST_DEF;
            }

            #marker

            #p::inventory::submit! {
                #p::Definition::DataSource(&__FEAST_DEF)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::is_region_name;

    #[test]
    fn region_names_have_the_aws_shape() {
        for ok in [
            "us-east-1",
            "ap-southeast-4",
            "us-gov-west-1",
            "cn-north-1",
            "xx-nowhere-9",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "us-east",
            "useast1",
            "US-EAST-1",
            "us east 1",
            "u-east-1",
            "us--1",
            "us-east-1a",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
