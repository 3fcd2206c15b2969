//! The pieces both products' CSDL `$metadata` documents are written with: a quick-xml writer
//! (so every name and value is escaped), the XML declaration, keys and properties.

use quick_xml::events::{BytesDecl, Event};
use quick_xml::Writer;
use std::io;

/// A CSDL document being written.
pub(crate) type Xml = Writer<Vec<u8>>;

/// The document `body` writes after the XML declaration, as text.
pub(crate) fn document(body: impl FnOnce(&mut Xml) -> io::Result<()>) -> String {
    let mut w = Writer::new(Vec::new());
    let written = w
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .and_then(|()| body(&mut w));
    // Writing into a Vec cannot fail; an empty document would show it if it ever did.
    if written.is_err() {
        return String::new();
    }
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// `<Key>` with a `<PropertyRef>` per name.
pub(crate) fn key(w: &mut Xml, names: &[&str]) -> io::Result<()> {
    w.create_element("Key").write_inner_content(|w| {
        for name in names {
            w.create_element("PropertyRef")
                .with_attribute(("Name", *name))
                .write_empty()?;
        }
        Ok(())
    })?;
    Ok(())
}

/// `<Property Name Type/>`, with `Nullable="false"` for a key and a `MaxLength` when known.
pub(crate) fn property(
    w: &mut Xml,
    name: &str,
    kind: &str,
    not_null: bool,
    max_length: Option<usize>,
) -> io::Result<()> {
    let max = max_length.map(|m| m.to_string());
    let mut e = w
        .create_element("Property")
        .with_attributes([("Name", name), ("Type", kind)]);
    if not_null {
        e = e.with_attribute(("Nullable", "false"));
    }
    if let Some(max) = &max {
        e = e.with_attribute(("MaxLength", max.as_str()));
    }
    e.write_empty()?;
    Ok(())
}
