//! Pieces shared by every macro: error accumulation, argument slots, Feast
//! types, durations and the fallback output used when a definition is wrong.

pub(crate) mod attr;
pub(crate) mod ctxt;
pub(crate) mod dtype;
pub(crate) mod duration;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// `#krate::__private::Location { .. }` for the item at `span`, so runtime
/// errors (duplicates, bad references) can point at the source line.
pub(crate) fn location(krate: &TokenStream, span: Span) -> TokenStream {
    quote_spanned! {span=>
        #krate::__private::Location {
            module_path: ::core::module_path!(),
            file: ::core::file!(),
            line: ::core::line!(),
            column: ::core::column!(),
        }
    }
}

/// `&[("k", "v"), ..]` for tags and field mappings.
pub(crate) fn str_pairs(map: Option<&attr::StrMap>) -> TokenStream {
    let pairs = map
        .into_iter()
        .flat_map(|m| &m.entries)
        .map(|(k, v)| quote!((#k, #v)));
    quote!(&[#(#pairs),*])
}

/// A `&'static str` literal, or `""`.
pub(crate) fn opt_str(lit: Option<&syn::LitStr>, fallback: Option<String>) -> TokenStream {
    match (lit, fallback) {
        (Some(l), _) => quote!(#l),
        (None, Some(s)) => quote!(#s),
        (None, None) => quote!(""),
    }
}

/// Re-emits the user's item next to the errors, so one mistake gives one error
/// and not a cascade of "cannot find type" errors (tokio, thiserror).
pub(crate) fn item_with_errors(item: TokenStream, errors: syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    quote!(#item #errors)
}

/// The `wanted` traits the user has not derived already.
pub(crate) fn not_derived<'w>(attrs: &[syn::Attribute], wanted: &[&'w str]) -> Vec<&'w str> {
    let mut present = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = a.parse_nested_meta(|m| {
            if let Some(last) = m.path.segments.last() {
                present.push(last.ident.to_string());
            }
            Ok(())
        });
    }
    wanted
        .iter()
        .copied()
        .filter(|w| !present.iter().any(|p| p == w))
        .collect()
}

/// `#[derive(..)]` of the `wanted` traits the user has not derived already.
pub(crate) fn missing_derives(attrs: &[syn::Attribute], wanted: &[&str]) -> TokenStream {
    let missing: Vec<syn::Ident> = not_derived(attrs, wanted)
        .into_iter()
        .map(|w| syn::Ident::new(w, Span::call_site()))
        .collect();
    if missing.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[derive(#(#missing),*)])
    }
}

/// The derives given to the unit structs of sources and services.
pub(crate) const UNIT_DERIVES: &[&str] = &[
    "Debug",
    "Clone",
    "Copy",
    "Default",
    "PartialEq",
    "Eq",
    "Hash",
];

/// Mentions the paths an argument list named, for output emitted next to
/// errors: their imports stay used (no extra warnings) and a typo in one still
/// gets rustc's "cannot find" error with its suggestion.
pub(crate) fn mention<'a>(paths: impl IntoIterator<Item = &'a syn::Path>) -> TokenStream {
    let paths: Vec<&syn::Path> = paths.into_iter().collect();
    if paths.is_empty() {
        return TokenStream::new();
    }
    quote! {
        #[allow(dead_code)]
        const _: ::core::marker::PhantomData<(#(#paths,)*)> = ::core::marker::PhantomData;
    }
}

/// Parses `true` or `false`.
pub(crate) fn parse_bool(cx: &ctxt::Ctxt, arg: &attr::RawArg) -> Option<syn::LitBool> {
    match syn::parse2::<syn::LitBool>(arg.value.clone()) {
        Ok(b) => Some(b),
        Err(_) => {
            cx.error_spanned_by(&arg.value, format!("`{}` takes `true` or `false`", arg.key));
            None
        }
    }
}
