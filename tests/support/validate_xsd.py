"""Validates XML documents against an XSD with lxml: validate_xsd.py SCHEMA FILE...
Prints each invalid file with lxml's errors and exits 1 if any."""
import sys

from lxml import etree

schema = etree.XMLSchema(etree.parse(sys.argv[1]))
failed = False
for path in sys.argv[2:]:
    document = etree.parse(path)
    if not schema.validate(document):
        failed = True
        print(path, etree.tostring(document, encoding="unicode")[:300])
        for error in schema.error_log:
            print("  line", error.line, error.message)
sys.exit(1 if failed else 0)
