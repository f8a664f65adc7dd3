package io.qsup.qmp.schema;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * A command or event described for a person, from the live schema: each argument (or data member) with its type,
 * whether it is optional, an enum's values and an object's members nested beneath, a union's members per tag value,
 * and a command's return type.
 */
public final class SchemaDescription {
    private final QmpSchema schema;
    private final StringBuilder out = new StringBuilder();
    /** The object types being described around the current line, so a recursive type is not expanded forever. */
    private final Deque<String> open = new ArrayDeque<>();

    private SchemaDescription(QmpSchema schema) {
        this.schema = schema;
    }

    /** The description of the command or event of that name, or null when the schema has neither. */
    public static String describe(QmpSchema schema, String name) {
        SchemaDescription d = new SchemaDescription(schema);
        SchemaCommand c = schema.command(name);
        if (c != null) {
            d.line(0, name + " (command" + features(c.features()) + ")");
            d.objectSection("arguments", schema.arguments(c));
            d.returns(c.retType());
            return d.out.toString();
        }
        SchemaEvent e = schema.event(name);
        if (e != null) {
            d.line(0, name + " (event" + features(e.features()) + ")");
            d.objectSection("data", (SchemaType.ObjectType) schema.type(e.argType()));
            return d.out.toString();
        }
        return null;
    }

    private static String features(List<String> features) {
        return features.isEmpty() ? "" : "; " + String.join(", ", features);
    }

    private void line(int depth, String text) {
        out.append("  ".repeat(depth)).append(text).append('\n');
    }

    private void objectSection(String title, SchemaType.ObjectType type) {
        if (type.members().isEmpty() && type.tag() == null) {
            line(1, title + ": none");
            return;
        }
        line(1, title + ":");
        open.push(type.name());
        members(type, 2);
        open.pop();
    }

    private void returns(String typeName) {
        SchemaType t = schema.type(typeName);
        if (t instanceof SchemaType.ObjectType o && o.members().isEmpty() && o.tag() == null) {
            line(1, "returns: nothing ({})");
            return;
        }
        line(1, "returns: " + schema.display(typeName));
        expand(typeName, 2);
    }

    private void members(SchemaType.ObjectType type, int depth) {
        for (SchemaType.Member m : type.members()) {
            List<String> notes = new ArrayList<>();
            notes.add(schema.display(m.type()));
            if (m.optional()) {
                notes.add("optional");
            }
            notes.addAll(m.features());
            String values = enumValues(m.type());
            line(depth, m.name() + ": " + String.join(", ", notes) + (values == null ? "" : "; one of: " + values));
            expand(m.type(), depth + 1);
        }
        if (type.tag() != null) {
            type.variants().forEach((value, variantName) -> {
                SchemaType.ObjectType v = (SchemaType.ObjectType) schema.type(variantName);
                if (v.members().isEmpty() && v.tag() == null) {
                    line(depth, "when " + type.tag() + " is " + value + ": no more members");
                    return;
                }
                line(depth, "when " + type.tag() + " is " + value + ":");
                members(v, depth + 1);
            });
        }
    }

    /** Beneath a member: an object's members, an array's element's, an alternate's object branch's. */
    private void expand(String typeName, int depth) {
        SchemaType t = schema.type(typeName);
        switch (t) {
            case SchemaType.ObjectType o -> {
                if (open.contains(o.name())) {
                    line(depth, "(the object described above)");
                    return;
                }
                open.push(o.name());
                members(o, depth);
                open.pop();
            }
            case SchemaType.ArrayType a -> expand(a.elementType(), depth);
            case SchemaType.AlternateType alt -> {
                for (String branch : alt.types()) {
                    SchemaType bt = schema.type(branch);
                    if (bt instanceof SchemaType.ObjectType || bt instanceof SchemaType.ArrayType) {
                        expand(branch, depth);
                    } else if (bt instanceof SchemaType.EnumType) {
                        line(depth, "or one of: " + enumValues(branch));
                    }
                }
            }
            default -> {
                // a built-in or enum says all in its own line
            }
        }
    }

    private String enumValues(String typeName) {
        return schema.type(typeName) instanceof SchemaType.EnumType e ? String.join(", ", e.values()) : null;
    }
}
