"""Drives WSMailUpImport with zeep, as a Python integration would: loads the WSDL
from the server, sends the Authentication header on both SOAP bindings, and
prints what came back as one JSON object for the Rust test to check.

usage: zeep_import.py WSDL_URL USER PASSWORD LIST_ID LIST_GUID
"""
import json
import sys

import zeep

wsdl, user, password, list_id, list_guid = sys.argv[1:6]
client = zeep.Client(wsdl)
Authentication = client.get_element("{http://ws.mailupnet.it/}Authentication")
results = {}
for binding in ("WSMailUpImportSoap", "WSMailUpImportSoap12"):
    service = client.bind("WSMailUpImport", binding)
    auth = Authentication(User=user, Password=password, encType="UTF-8")
    result = {
        "lists": service.GetNlLists(_soapheaders=[auth]),
        "group": service.CreateGroup(
            idList=int(list_id),
            listGUID=list_guid,
            newGroupName=f"From zeep {binding}",
            _soapheaders=[auth],
        ),
    }
    try:
        service.GetNlLists(_soapheaders=[Authentication(User=user, Password="wrong")])
        result["fault"] = None
    except zeep.exceptions.Fault as fault:
        result["fault"] = fault.message
        result["fault_detail"] = "" if fault.detail is None else "".join(fault.detail.itertext())
    results[binding] = result
print(json.dumps(results))
