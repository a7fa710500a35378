//! `#[entity]`: a struct whose one field is the join key.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::common::attr::{self, Attr, Meta};
use crate::common::ctxt::Ctxt;
use crate::common::{item_with_errors, location, missing_derives, not_derived, opt_str, str_pairs};

const MACRO: &str = "entity";
const KEYS: &[&str] = &["name", "description", "tags", "owner", "crate"];

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let input: syn::ItemStruct = match syn::parse2(item.clone()) {
        Ok(s) => s,
        Err(_) => {
            let err = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[entity]` goes on a struct with one field, the join key: `pub struct Driver { driver_id: i64 }`",
            );
            return item_with_errors(item, err);
        }
    };
    let cx = Ctxt::new();
    let mut name = Attr::<syn::LitStr>::none(MACRO, "name");
    let mut meta = Meta::new(MACRO);
    for arg in attr::split_args(&cx, MACRO, args) {
        if meta.try_set(&cx, &arg) {
            continue;
        }
        match arg.key.to_string().as_str() {
            "name" => {
                if let Some(v) = arg.parse(&cx) {
                    name.set(&cx, &arg.key, v);
                }
            }
            "join_keys" | "value_type" => cx.error_spanned_by(
                &arg.key,
                format!(
                    "`{}` is not an argument here: the entity's one field is its join key, and the field's type its value type, as in `pub struct Driver {{ driver_id: i64 }}`",
                    arg.key
                ),
            ),
            _ => attr::unknown_arg(&cx, MACRO, &arg.key, KEYS),
        }
    }
    if let Some(lit) = name.get() {
        check_name(&cx, lit);
    }

    if !input.generics.params.is_empty() {
        cx.error_spanned_by(&input.generics, "an entity cannot be generic");
    }
    let field = match &input.fields {
        syn::Fields::Named(named) if named.named.len() == 1 => named.named.first(),
        syn::Fields::Named(named) if named.named.len() > 1 => {
            cx.error_spanned_by(
                &named.named,
                "an entity has exactly one join key, so one field (Feast: \"An entity may only have a single join key\"); use several entities on a view for a compound key",
            );
            None
        }
        _ => {
            cx.error_spanned_by(
                &input.ident,
                "an entity needs one named field, its join key: `pub struct Driver { driver_id: i64 }`",
            );
            None
        }
    };

    if let Some(f) = field {
        check_key_type(&cx, &f.ty);
    }
    if let Err(e) = cx.check() {
        let stub = stub_impl(&input, &meta.krate());
        let out = item_with_errors(item, e);
        return quote!(#out #stub);
    }
    let Some(field) = field else {
        return item;
    };
    let Some(field_ident) = &field.ident else {
        return item;
    };

    let krate = meta.krate();
    let ident = &input.ident;
    let entity_name = name
        .get()
        .map_or_else(|| ident.to_string().to_snake_case(), syn::LitStr::value);
    let join_key = field_ident.to_string();
    let ty = &field.ty;
    let value_type = quote_spanned!(ty.span()=> <#ty as #krate::__private::JoinKey>::FEAST_TYPE);
    let description = opt_str(meta.description.get(), attr::doc_string(&input.attrs));
    let owner = opt_str(meta.owner.get(), None);
    let tags = str_pairs(meta.tags.get());
    let loc = location(&krate, ident.span());
    let derives = missing_derives(&input.attrs, &["Debug", "Clone", "PartialEq", "Eq", "Hash"]);

    quote! {
        #derives
        #input

        const _: () = {
            static __FEAST_DEF: #krate::__private::EntityDef = #krate::__private::EntityDef {
                name: #entity_name,
                join_key: #join_key,
                value_type: #value_type,
                description: #description,
                tags: #tags,
                owner: #owner,
                location: #loc,
            };

            impl #krate::__private::Entity for #ident {
                type Key = #ty;
                const DEF: &'static #krate::__private::EntityDef = &__FEAST_DEF;

                fn key(&self) -> &#ty {
                    &self.#field_ident
                }

                fn from_key(key: #ty) -> Self {
                    #ident { #field_ident: key }
                }
            }

            #krate::__private::inventory::submit! {
                #krate::__private::Definition::Entity(&__FEAST_DEF)
            }
        };
    }
}

/// `Entity` with a stand-in definition, emitted beside the entity's errors: a
/// view that names the entity then reports only the entity's own mistake, not
/// a second "is not a feast entity" error. Never run: the crate does not build.
fn stub_impl(input: &syn::ItemStruct, krate: &TokenStream) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let p = quote!(#krate::__private);
    let ident = &input.ident;
    // `Entity`'s supertraits, where the user has not derived them: the item
    // is emitted as written, and a derive could fail on its fields.
    let supertraits = not_derived(&input.attrs, &["Debug", "Clone", "PartialEq"])
        .into_iter()
        .map(|t| match t {
            "Debug" => quote! {
                impl ::core::fmt::Debug for #ident {
                    fn fmt(&self, _: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        ::core::unreachable!()
                    }
                }
            },
            "Clone" => quote! {
                impl ::core::clone::Clone for #ident {
                    fn clone(&self) -> Self {
                        ::core::unreachable!()
                    }
                }
            },
            _ => quote! {
                impl ::core::cmp::PartialEq for #ident {
                    fn eq(&self, _: &Self) -> bool {
                        ::core::unreachable!()
                    }
                }
            },
        });
    quote! {
        const _: () = {
            #(#supertraits)*
            impl #p::Entity for #ident {
                type Key = i64;
                const DEF: &'static #p::EntityDef = &#p::INVALID_ENTITY;
                fn key(&self) -> &i64 {
                    ::core::unreachable!()
                }
                fn from_key(_: i64) -> Self {
                    ::core::unreachable!()
                }
            }
        };
    }
}

/// Feast names are letters, digits and underscores.
pub(crate) fn check_name(cx: &Ctxt, lit: &syn::LitStr) {
    let v = lit.value();
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        cx.error_spanned_by(
            lit,
            format!("invalid name \"{v}\": use letters, digits and `_`"),
        );
    }
}

/// Rejects types that can never be join keys with one error at the type.
/// Other paths (aliases, wrappers) are left to the `JoinKey` trait bound.
fn check_key_type(cx: &Ctxt, ty: &syn::Type) {
    let msg = "cannot be a join key: Feast serializes keys of type Int64 (`i64`), Int32 (`i32`), String (`String`) and Bytes (`Vec<u8>`)";
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => {
            let Some(ident) = p.path.get_ident() else {
                return;
            };
            let name = ident.to_string();
            const NEVER: &[&str] = &[
                "f32", "f64", "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize",
                "i8", "i16", "i128", "isize",
            ];
            if NEVER.contains(&name.as_str()) {
                let hint = match name.as_str() {
                    "u8" | "u16" | "i8" | "i16" => "; widen it to `i32`",
                    "u32" | "u64" | "usize" | "isize" | "i128" | "u128" => "; use `i64`",
                    "str" | "char" => "; use `String`",
                    _ => "",
                };
                cx.error_spanned_by(ty, format!("`{name}` {msg}{hint}"));
            }
        }
        syn::Type::Reference(_)
        | syn::Type::Tuple(_)
        | syn::Type::Array(_)
        | syn::Type::Slice(_) => {
            cx.error_spanned_by(ty, format!("`{}` {msg}", quote!(#ty)));
        }
        _ => {}
    }
}
